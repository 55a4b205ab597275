"""Auditors can do nothing but read: every unsafe method on every URL the resolver knows
answers 403 for them (filled with their own organisation's real ids, so only the role can be
what refuses), except their own account's pages; and no page they can open shows a secret.

The URL crawl is `tests/test_isolation.py`'s (`crawl_paths`), reused rather than copied: that
test covers foreign ids for every persona, this one the auditor's own organisation.
"""

import datetime as dt
import itertools

import pytest
from django.test import Client
from django.urls import resolve
from django.utils import timezone

from accounts.models import Invitation, Membership, Organisation
from audit.models import AuditEvent
from auditor.middleware import is_personal_url
from delegations.catalog.partner_links import partner_link_create
from delegations.lifecycle.drift import drift_record
from delegations.models import (
    CatalogRole,
    CloudAccount,
    Delegation,
    DriftFinding,
    PartnerAllowance,
    PartnerLink,
)
from tests.audit.history import History, history_fixture  # noqa: F401
from tests.test_isolation import crawl_paths

pytestmark = pytest.mark.django_db

UNSAFE = ("post", "put", "patch", "delete")

# The auditor's own account, and nothing else. Written out here (not imported from the
# middleware) so that widening the middleware's exemption fails this test until reviewed.
PERSONAL_VIEWS = {
    "account_login",
    "account_logout",
    "account_inactive",
    "account_reauthenticate",
    "account_email",
    "account_email_verification_sent",
    "account_change_password",
    "account_set_password",
    "account_reset_password",
    "account_confirm_login_code",
    "account_confirm_email",
    "account_reset_password_from_key_done",
    "account_reset_password_from_key",
    "account_reset_password_done",
    "mfa_index",
    "mfa_authenticate",
    "mfa_reauthenticate",
    "mfa_activate_totp",
    "mfa_deactivate_totp",
    "mfa_view_recovery_codes",
    "mfa_generate_recovery_codes",
    "mfa_download_recovery_codes",
    "usersessions_list",
    "accounts:switch_organisation",
    "accounts:invitation_accept",
    # The person's own API tokens and pap login's confirmation (api/page_urls.py): an
    # auditor's token acts only as the auditor, whom the API keeps read-only too.
    "account_tokens",
    "account_token_revoke",
    "account_device",
    # The person's own language and time zone (issue 17): display preferences of their own.
    "accounts:preferences",
    "set_language",
}


# Read-only in substance though a POST: starting a verification of the record (it adds a
# verification run and its audit events, and changes nothing of any organisation). Written
# out here too, for the same reason as PERSONAL_VIEWS.
AUDITOR_POST_ACTIONS = {"audit:verify_start"}


def organisation_state() -> list:
    """Everything an organisation owns; an auditor must not be able to change any of it."""
    return [
        sorted(Organisation.objects.values_list("pk", "name", "kind", "account_uid")),
        sorted(Membership.objects.values_list("pk", "user_id", "organisation_id", "role")),
        sorted(Invitation.objects.values_list("pk", "accepted_at", "cancelled_at", "sent_at")),
        sorted(Delegation.objects.values_list("pk", "status", "version")),
        sorted(CatalogRole.objects.values_list("pk", "is_active", "policies")),
        sorted(CloudAccount.objects.values_list("pk", "is_active", "secret_fingerprint")),
        sorted(PartnerAllowance.objects.values_list("pk", "partner_account_uid")),
        sorted(PartnerLink.objects.values_list("pk", "revoked_at")),
        sorted(DriftFinding.objects.values_list("pk", "resolved_at", "resolution")),
    ]


@pytest.fixture
def own_ids(history: History) -> list[str]:
    """Real ids of the auditor's own organisation, one of each kind a URL takes."""
    owner = history.owner
    invitation = Invitation.objects.create(
        organisation=owner,
        email="invitee@a.example",
        role="auditor",
        token_hash="a" * 64,
        invited_by=history.owner_admin,
        expires_at=timezone.now() + dt.timedelta(days=30),
    )
    link, _code = partner_link_create(owner=owner, created_by=history.owner_admin, label="B")
    finding = drift_record(
        managed_role=history.delegation.managed_role,
        kind=DriftFinding.Kind.UNMANAGED_PRINCIPAL_ADDED,
        subject="acs:ram::77777777:root",
    )
    return [
        str(history.delegation.pk),
        str(Membership.objects.get(user=history.owner_admin, organisation=owner).pk),
        str(invitation.pk),
        str(history.delegation.catalog_role_id),
        str(PartnerAllowance.objects.filter(organisation=owner).first().pk),
        str(link.pk),
        str(finding.pk),
        str(owner.pk),
        str(AuditEvent.objects.filter(organisation=owner).first().sequence),
    ]


@pytest.mark.slow
def test_every_unsafe_method_on_every_url_is_refused_to_an_auditor(history: History, own_ids):
    paths = crawl_paths(own_ids)
    assert f"/delegations/{history.delegation.pk}/revoke/" in paths
    assert "/audit/" in paths and "/audit/verify/" in paths
    before = organisation_state()
    client = Client(raise_request_exception=False)
    refused, personal, failures, allowed = 0, set(), [], set()
    body = {
        "reason": "auditor tries",
        "role": "admin",
        "email": "auditor-invites@a.example",
        "resolution": "accept",
        "version": "1",
        "run": "1",
    }
    for path, method in itertools.product(paths, UNSAFE):
        view_name = resolve(path).view_name
        if is_personal_url(view_name):
            personal.add(view_name)
            continue
        if "_auth_user_id" not in client.session:
            client.force_login(history.auditor)
        response = getattr(client, method)(path, body if method == "post" else None)
        if method == "post" and view_name in AUDITOR_POST_ACTIONS:
            allowed.add(view_name)
            assert response.status_code == 302, (path, response.status_code)
            continue
        if response.status_code == 403:
            refused += 1
        else:
            failures.append((method.upper(), path, response.status_code))
    assert not failures, failures
    assert refused > 100
    assert personal <= PERSONAL_VIEWS, personal - PERSONAL_VIEWS
    assert allowed == AUDITOR_POST_ACTIONS
    assert organisation_state() == before


def test_the_middleware_exempts_exactly_the_reviewed_auditor_actions():
    from auditor.middleware import AUDITOR_ALLOWED_POSTS

    assert AUDITOR_ALLOWED_POSTS == AUDITOR_POST_ACTIONS


def test_the_auditors_own_account_pages_change_nothing_of_the_organisation(
    history: History, own_ids
):
    before = organisation_state()
    client = Client(raise_request_exception=False)
    for path in crawl_paths(own_ids):
        view_name = resolve(path).view_name
        if not is_personal_url(view_name):
            continue
        if "_auth_user_id" not in client.session:
            client.force_login(history.auditor)
        response = client.post(path, {"role": "admin", "organisation": str(history.owner.pk)})
        assert response.status_code < 500, (path, response.status_code)
    assert organisation_state() == before


def test_admins_are_not_affected(history: History):
    client = history.client(history.owner_admin)
    response = client.post(
        f"/delegations/{history.delegation.pk}/revoke/", {"reason": "x", "version": "1"}
    )
    assert response.status_code != 403 or "Auditors" not in response.content.decode()


@pytest.mark.slow
def test_no_page_an_auditor_can_open_shows_a_secret(history: History, own_ids):
    secret = history.world.key[1]
    ciphertext = CloudAccount.objects.get(
        organisation=history.owner, is_active=True
    ).secret_ciphertext
    client = history.client(history.auditor)
    opened = 0
    for path in crawl_paths(own_ids):
        if "logout" in path:
            continue
        response = client.get(path)
        if response.status_code != 200:
            continue
        content = (
            b"".join(response.streaming_content) if response.streaming else response.content
        ).decode(errors="replace")
        opened += 1
        assert secret not in content, path
        assert ciphertext not in content, path
    for path in ("/audit/events/export.json", "/audit/events/export.csv"):
        export = b"".join(client.get(path).streaming_content).decode()
        assert secret not in export and ciphertext not in export
    assert opened > 10
