import json
import stat
from pathlib import Path

import pytest
from django.core.management import call_command

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_keeps_passwords_private(
    settings: object, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    settings.DATA_DIR = tmp_path  # type: ignore[attr-defined]
    call_command("seed_demo")
    first = capsys.readouterr().out
    event_count = AuditEvent.objects.count()

    call_command("seed_demo")
    second = capsys.readouterr().out
    assert first == second
    assert AuditEvent.objects.count() == event_count

    company_a = Organisation.objects.get(slug="company-a")
    company_b = Organisation.objects.get(slug="company-b")
    assert (company_a.kind, company_a.account_uid, company_a.enterprise_alias) == (
        "owner",
        "11223344",
        "company-a",
    )
    assert (company_b.kind, company_b.account_uid, company_b.enterprise_alias) == (
        "partner",
        "12345678",
        "company-b",
    )
    roles = {(m.user.email, m.organisation.slug, m.role) for m in Membership.objects.all()}
    assert roles == {
        ("admin@company-a.example", "company-a", "admin"),
        ("auditor@company-a.example", "company-a", "auditor"),
        ("approver@company-a.example", "company-a", "admin"),
        ("admin@company-b.example", "company-b", "admin"),
        ("alice@company-b.example", "company-b", "staff"),
        ("bob@company-b.example", "company-b", "staff"),
        ("aaa@company-b.example", "company-b", "staff"),
    }

    path = tmp_path / "demo-users.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())["users"]
    for entry in stored:
        user = User.objects.get(email=entry["email"])
        assert user.check_password(entry["password"])
        assert user.emailaddress_set.get().verified
        assert entry["password"] in first
    assert len({entry["password"] for entry in stored}) == len(stored)
    password_text = {entry["password"] for entry in stored}
    for event in AuditEvent.objects.all():
        assert not any(p in json.dumps([event.before, event.after]) for p in password_text)


@pytest.mark.django_db
def test_seed_demo_repairs_a_password_that_drifted(settings: object, tmp_path: Path) -> None:
    settings.DATA_DIR = tmp_path  # type: ignore[attr-defined]
    call_command("seed_demo", "--quiet")
    alice = User.objects.get(email="alice@company-b.example")
    alice.set_password("something-else-123")
    alice.save()
    call_command("seed_demo", "--quiet")
    stored = json.loads((tmp_path / "demo-users.json").read_text())["users"]
    password = next(e["password"] for e in stored if e["email"] == alice.email)
    alice.refresh_from_db()
    assert alice.check_password(password)
