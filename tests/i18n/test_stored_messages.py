"""Sentences the worker stores in the database (a delegation's last error, a verification's
verdict, a feed's or a chat delivery's problem) are shown in the reader's language; a cloud's
own message inside them stays as the cloud wrote it, isolated in <bdi> (issue 17)."""
# ruff: noqa: RUF001 - the Chinese sentences assert the catalogue's own full-width punctuation

from collections.abc import Callable

import pytest
from django.utils import translation

from accounts.models import Organisation, User
from activity.services import MISSING_PERMISSION_MESSAGE
from audit.verification import NO_PROGRESS_TEXT, PRESS_VERIFY_TEXT
from audit.verify import INSERTED_ROW_TEXT
from core.i18n import read_stored, stored_text
from delegations.models import Delegation
from delegations.role_state import waiting_for_room_message
from delegations.worker.engine import GAVE_UP_TEXT
from tests.delegations.factories import CatalogRoleFactory, CloudAccountFactory, DelegationFactory


def test_a_stored_sentence_is_english_in_the_database_and_chinese_when_read() -> None:
    with translation.override("zh-hans"):  # the worker's language does not matter
        stored = waiting_for_room_message("ecs-admin", used=2040, limit=2048)
    assert stored.startswith("Waiting for room on role ecs-admin: its trust policy holds 2040")
    assert read_stored(stored) == stored  # English reader
    with translation.override("zh-hans"):
        assert read_stored(stored) == (
            "正在等待角色 ecs-admin 的空间：其信任策略已占用 2040 / 2048 个字符，尚无法容纳此"
            "合作伙伴。撤销释放空间后，将按审批顺序加入。"
        )


def test_nested_repeated_and_foreign_texts() -> None:
    stale = stored_text(NO_PROGRESS_TEXT, minutes=10, then=PRESS_VERIFY_TEXT)
    inserted = stored_text(INSERTED_ROW_TEXT, sequence=8, before=6, last=7)
    cloud = stored_text(
        GAVE_UP_TEXT, message="The request processing has failed due to some unknown error."
    )
    with translation.override("zh-hans"):
        assert read_stored(stale) == (
            "已有 10 分钟没有进展：运行它的后台工作进程已丢失，或任务从未被工作进程接收。"
            "点击“立即校验”可启动新的校验。"
        )
        assert read_stored(inserted).startswith("第 8 行链接到第 6 行，跳过了第 7 行")
        # The portal's words around the cloud's message are translated, not the message.
        assert read_stored(cloud) == (
            "The request processing has failed due to some unknown error.（多次重试后已放弃）"
        )
        # Not one of the portal's sentences (a cloud message, a truncated row): as it is.
        assert read_stored("Throttling.User: Request was denied") == (
            "Throttling.User: Request was denied"
        )
        assert read_stored(MISSING_PERMISSION_MESSAGE[:50]) == MISSING_PERMISSION_MESSAGE[:50]
    with pytest.raises(ValueError):
        stored_text("Not a registered message %(x)s", x=1)


@pytest.mark.django_db
def test_a_failed_delegation_page_shows_the_portals_reason_in_chinese(
    owner_admin: User, company_a: Organisation, login: Callable
) -> None:
    account = CloudAccountFactory(organisation=company_a)
    role = CatalogRoleFactory(cloud_account=account, role_name="ecs-admin")
    delegation = DelegationFactory(
        catalog_role=role,
        status=Delegation.Status.FAILED,
        last_error_code="WaitingForRoom",
        last_error_message=waiting_for_room_message("ecs-admin", used=2040, limit=2048),
    )
    User.objects.filter(pk=owner_admin.pk).update(language="zh-hans")
    body = login(owner_admin).get(f"/delegations/{delegation.pk}/").content.decode()
    assert "<bdi>正在等待角色 ecs-admin 的空间：其信任策略已占用 2040 / 2048 个字符" in body
    assert "Waiting for room" not in body

    Delegation.objects.filter(pk=delegation.pk).update(
        last_error_message="EntityAlreadyExists.Role: The role already exists."
    )
    body = login(owner_admin).get(f"/delegations/{delegation.pk}/").content.decode()
    assert "<bdi>EntityAlreadyExists.Role: The role already exists.</bdi>" in body


def test_every_registered_message_is_tried_for_its_own_renderings() -> None:
    # read_stored tries only the messages whose words before the first placeholder start the
    # text; each message's renderings (placeholders filled with short or long values) still
    # reach it, and come back in the reader's language.
    from core import i18n

    for msgid, (_pattern, kinds) in i18n._STORED.items():
        for filler in ("x", "a longer value"):
            params = {name: 7 if kind == "d" else filler for name, kind in kinds.items()}
            text = stored_text(msgid, **params)
            tried = i18n._STORED_BY_START.get(text[: i18n._START_CHARS], i18n._STORED_ANY_START)
            assert msgid in tried, msgid
            with translation.override("zh-hans"):
                assert read_stored(text) == translation.gettext(msgid) % params, msgid


def test_every_stored_sentence_of_the_worker_is_known_to_a_process_that_never_ran_it() -> None:
    """A page reads a delegation's last error in a web process, which never imports the
    worker's modules by itself: Django's start-up registers their sentences (`startup`), or a
    page shows the English one. Checked in a fresh process: importing every worker module
    after start-up registers nothing new."""
    import os
    import subprocess
    import sys

    script = (
        "import importlib, pkgutil, django\n"
        "django.setup()\n"
        "from core import i18n\n"
        "import delegations.worker as worker\n"
        "known = set(i18n._STORED)\n"
        "for module in pkgutil.iter_modules(worker.__path__):\n"
        "    importlib.import_module(f'delegations.worker.{module.name}')\n"
        "print(sorted(set(i18n._STORED) - known))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"},
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
