"""The request-by-code pages: a partner link code is posted (never in a URL), checked against
the owner's allow-list before anything of the owner is shown, and refused in the same words,
the same page, as a wrong code; it stays out of every URL and log line of the flow (issue 18,
item 11)."""

import logging
import re
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Organisation, User
from delegations.lifecycle.views import PARTNER_LINK_SESSION_KEY
from delegations.models import CatalogRole, Delegation, PartnerLink
from tests.delegations.lifecycle.test_views import enter_code, with_mfa

pytestmark = pytest.mark.django_db

REQUEST_URL = reverse("delegations:request")


def comparable(body: bytes) -> str:
    """A page without what differs on every render (the CSRF token, the request id)."""
    text = body.decode()
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", text)
    return re.sub(r"[0-9a-f]{32}", "", text)


def test_a_foreign_partner_sees_exactly_the_wrong_code_page(
    login: Callable[..., Client],
    partner_admin_d: User,
    link_a: tuple[PartnerLink, str],
    ecs_admin: CatalogRole,
    allow_b: None,
) -> None:
    client = with_mfa(login(partner_admin_d), partner_admin_d)
    real = enter_code(client, link_a[1])
    wrong = enter_code(client, "ABCDE-FGHJK-LMNPQ-RSTUV")
    assert real.status_code == wrong.status_code == 400
    assert comparable(real.content) == comparable(wrong.content)
    body = real.content.decode()
    assert "This partner link code is not valid for your organisation" in body
    for owner_detail in ("Company A", "ecs-admin", "11223344", "For B"):
        assert owner_detail not in body
    assert PARTNER_LINK_SESSION_KEY not in client.session
    # And nothing of the owner afterwards either: the request page is still the code page.
    after = client.get(REQUEST_URL)
    assert b"ecs-admin" not in after.content and b"Company A" not in after.content
    assert Delegation.objects.count() == 0


def test_the_code_is_not_written_back_into_the_page(
    login: Callable[..., Client], partner_admin: User
) -> None:
    client = with_mfa(login(partner_admin), partner_admin)
    response = enter_code(client, "ZZZZZ-YYYYY-XXXXX-WWWWW")
    assert b"ZZZZZ" not in response.content


def test_a_code_revoked_after_it_was_accepted_stops_the_request_page(
    login: Callable[..., Client],
    partner_admin: User,
    owner_admin: User,
    link_a: tuple[PartnerLink, str],
    ecs_admin: CatalogRole,
    allow_b: None,
) -> None:
    from delegations.catalog.partner_links import partner_link_revoke

    client = with_mfa(login(partner_admin), partner_admin)
    enter_code(client, link_a[1])
    assert b"ecs-admin" in client.get(REQUEST_URL).content
    partner_link_revoke(link=link_a[0], revoked_by=owner_admin)
    page = client.get(REQUEST_URL, follow=True)
    assert b"ecs-admin" not in page.content and "no longer works" in page.content.decode()
    refused = client.post(
        REQUEST_URL, {"catalog_role": str(ecs_admin.pk), "reason": "r", "duration": "open"}
    )
    assert refused.status_code == 400 and Delegation.objects.count() == 0


def test_use_a_different_code_forgets_the_accepted_one(
    login: Callable[..., Client],
    partner_admin: User,
    link_a: tuple[PartnerLink, str],
    ecs_admin: CatalogRole,
    allow_b: None,
) -> None:
    client = with_mfa(login(partner_admin), partner_admin)
    enter_code(client, link_a[1])
    assert client.session[PARTNER_LINK_SESSION_KEY] == str(link_a[0].pk)
    response = client.post(REQUEST_URL, {"forget_code": "1"})
    assert response.status_code == 302 and PARTNER_LINK_SESSION_KEY not in client.session
    assert b"Partner link code" in client.get(REQUEST_URL).content


def test_owner_creates_a_bound_single_use_code_that_no_url_carries(
    login: Callable[..., Client],
    owner_admin: User,
    company_a: Organisation,
    company_b: Organisation,
    allow_b: None,
) -> None:
    client = with_mfa(login(owner_admin), owner_admin)
    page = client.get(reverse("delegations:partner_links"))
    assert 'value="14" selected' in page.content.decode()
    response = client.post(
        reverse("delegations:partner_links"),
        {
            "label": "For B",
            "expires_in": "7",
            "partner_account_uid": company_b.account_uid,
            "single_use": "on",
        },
    )
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    code = response.context["new_code"]
    link = PartnerLink.objects.get(organisation=company_a)
    assert link.single_use and link.partner_account_uid == company_b.account_uid
    body = response.content.decode()
    assert code in body and "for one request" in body and company_b.account_uid in body
    assert f"?code={code}" not in body and "code=" not in body.replace("data-testid", "")
    not_allowed = client.post(
        reverse("delegations:partner_links"),
        {"label": "", "expires_in": "14", "partner_account_uid": "5566778899001122"},
    )
    assert not_allowed.status_code == 400 and "allow-list" in not_allowed.content.decode()
    forever = client.post(reverse("delegations:partner_links"), {"expires_in": "never"})
    assert forever.status_code == 400 and PartnerLink.objects.count() == 1


def test_the_code_is_in_no_url_and_no_log_line_of_the_whole_flow(
    login: Callable[..., Client],
    owner_admin: User,
    partner_admin: User,
    partner_admin_d: User,
    ecs_admin: CatalogRole,
    allow_b: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.request")
    urls: list[str] = []

    def record(response: object) -> object:
        urls.append(response.request["PATH_INFO"] + "?" + response.request["QUERY_STRING"])  # type: ignore[attr-defined]
        urls.append(response.get("Location", ""))  # type: ignore[attr-defined]
        return response

    owner = with_mfa(login(owner_admin), owner_admin)
    created = record(owner.post(reverse("delegations:partner_links"), {"expires_in": "14"}))
    code = created.context["new_code"]  # type: ignore[attr-defined]
    foreign = with_mfa(login(partner_admin_d), partner_admin_d)
    record(enter_code(foreign, code))
    partner = with_mfa(login(partner_admin), partner_admin)
    record(enter_code(partner, code.lower()))
    record(partner.get(REQUEST_URL))
    sent = record(
        partner.post(
            REQUEST_URL, {"catalog_role": str(ecs_admin.pk), "reason": "r", "duration": "open"}
        )
    )
    assert sent.status_code == 302  # type: ignore[attr-defined]
    assert Delegation.objects.count() == 1
    compact = code.replace("-", "")
    for form in (code, compact, code.lower(), compact.lower()):
        assert not [u for u in urls if form in u]
        assert form not in caplog.text
    assert compact not in str(dict(partner.session))


@pytest.mark.usefixtures("fixed_rate_window")
def test_code_attempts_are_rate_limited_per_partner_organisation(
    login: Callable[..., Client],
    partner_admin: User,
    partner_admin_d: User,
    link_a: tuple[PartnerLink, str],
    allow_b: None,
    settings,
) -> None:
    from audit.models import AuditEvent

    settings.PORTAL_PARTNER_LINK_CODE_RATE = "3/600"
    guesser = with_mfa(login(partner_admin_d), partner_admin_d)
    for _ in range(3):
        assert enter_code(guesser, "ABCDE-FGHJK-LMNPQ-RSTUV").status_code == 400
    events = AuditEvent.objects.count()
    limited = enter_code(guesser, link_a[1])
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0
    assert "Too many partner link codes tried" in limited.content.decode()
    # A refused attempt that never reached the codes is not another audit event to flood with.
    assert AuditEvent.objects.count() == events
    assert PARTNER_LINK_SESSION_KEY not in guesser.session
    # Another organisation is not held back by it.
    partner = with_mfa(login(partner_admin), partner_admin)
    assert enter_code(partner, link_a[1]).status_code == 302
