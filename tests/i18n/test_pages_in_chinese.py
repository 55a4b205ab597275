"""Every page of the tenant crawl, rendered in zh-hans, has no English sentence left
(issue 17's proof, part 2).

The crawl of tests/test_isolation.py (every URL pattern) is filled with the ids of the
personas' own objects on a world with an active delegation, and each persona (owner admin,
auditor, partner admin, partner staff), whose language is zh-hans, reads every HTML page it
gets. `english_detector` reports runs of words from the English catalogue outside names, ids,
code blocks and policy JSON. Parametrised per URL area (the path's first segment), so one
area can be checked alone; the failure lists each page and the English it shows.
"""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
from django.test import Client
from django.urls import get_resolver

from accounts.models import Membership, User
from delegations.models import CatalogRole, Delegation
from tests.audit.history import History, active_history_fixture  # noqa: F401
from tests.i18n.english_detector import english_runs, english_vocabulary, untranslated_phrases
from tests.test_isolation import _patterns, crawl_paths

pytestmark = pytest.mark.django_db

# Not pages of the product in a person's language: Django's admin, the JSON API and its docs,
# downloads, signing out, health probes, and the demo's machine endpoints.
SKIPPED = re.compile(
    r"^/admin/|^/api/v1/|/export|\.csv$|\.json$|/download|^/accounts/logout/"
    r"|^/dev/webhooks/receive/|/credentials-uri/|^/healthz|^/readyz"
)
PERSONAS = ("owner_admin", "auditor", "partner_admin", "partner_staff")


def _area(path: str) -> str:
    return path.strip("/").split("/")[0] or "(root)"


AREAS = sorted(
    {
        _area("/" + template.replace("^", ""))
        for template, _pattern in _patterns(get_resolver())
        if not SKIPPED.search("/" + template.replace("^", ""))
    }
)


def _own_ids(history: History) -> list[str]:
    delegation = history.delegation
    memberships = Membership.objects.filter(
        organisation__in=[history.owner, history.partner]
    ).values_list("pk", flat=True)
    return [
        str(delegation.pk),
        str(delegation.catalog_role_id),
        str(history.owner.pk),
        str(history.partner.pk),
        *map(str, memberships),
        "1",
        "x",
    ]


@pytest.mark.parametrize("area", AREAS)
@pytest.mark.slow
def test_every_page_reads_in_chinese(area: str, active_history: History) -> None:
    vocabulary = english_vocabulary()
    history = active_history
    # What people typed is in their own language: the world's English reason and role
    # description would otherwise read as untranslated text.
    Delegation.objects.update(reason="按支持合同运维 ECS 集群")
    CatalogRole.objects.update(description="运维 ECS 集群")
    paths = [
        path
        for path in crawl_paths(_own_ids(history))
        if _area(path) == area and not SKIPPED.search(path)
    ]
    found: dict[str, set[str]] = defaultdict(set)
    rendered = 0
    for persona in PERSONAS:
        user: User = getattr(history, persona)
        User.objects.filter(pk=user.pk).update(language="zh-hans", time_zone="Asia/Shanghai")
        client = Client(raise_request_exception=False)
        for path in paths:
            if "_auth_user_id" not in client.session:
                client.force_login(user)
            response = client.get(path)
            if not response.get("Content-Type", "").startswith("text/html") or response.streaming:
                continue
            assert response["Content-Language"] == "zh-hans", path
            rendered += 1
            for phrase in untranslated_phrases(response.content.decode(), vocabulary):
                found[f"{persona} GET {path} ({response.status_code})"].add(phrase)
    assert rendered or not paths, f"no page of {area} rendered"
    assert not found, f"English left on {len(found)} page(s) in zh-hans:\n" + "\n".join(
        f"{page}: {sorted(phrases)}" for page, phrases in sorted(found.items())
    )


def test_the_detector_finds_english_and_leaves_names_alone() -> None:
    vocabulary = {"sign", "in", "register", "your", "organisation", "company", "example"}
    assert english_runs("Sign in · Register your organisation", vocabulary) == [
        "Sign in",
        "Register your organisation",
    ]
    assert english_runs("Company B · Person1 Example · admin@company-b.example", vocabulary) == []
    html = (
        '<p>登录 <span title="Register your organisation">公司</span></p>'
        "<pre>Sign in</pre><code>Register your</code><td class='mono'>Sign in</td>"
    )
    assert untranslated_phrases(html, vocabulary) == ["Register your organisation"]
