"""Organisation admin pages: invite, resend, cancel, change role, remove."""

import re
from collections.abc import Callable

import pytest
from django.core import mail
from django.test import Client

from accounts import hooks, services
from accounts.models import Invitation, Membership, Organisation, User
from tests.accounts.helpers import all_event_text, events, links_in_last_email
from tests.personas import make_member

pytestmark = pytest.mark.django_db


def invite(client: Client, email: str, role: str, capture: Callable) -> object:
    with capture(execute=True):
        return client.post("/organisation/members/invite/", {"email": email, "role": role})


def test_members_page_lists_people_for_any_member(
    login: Callable, partner_staff: User, partner_admin: User
) -> None:
    response = login(partner_staff).get("/organisation/members/")
    assert response.status_code == 200
    body = response.content.decode()
    assert partner_admin.email in body
    assert "Send invitation" not in body  # staff see people, not the admin controls


def test_members_page_needs_sign_in(client: Client) -> None:
    response = client.get("/organisation/members/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_admin_invites_by_email_with_a_role(
    login: Callable,
    owner_admin: User,
    company_a: Organisation,
    django_capture_on_commit_callbacks: Callable,
) -> None:
    client = login(owner_admin)
    response = invite(
        client, "New.Person@Example.com", "auditor", django_capture_on_commit_callbacks
    )
    assert response.status_code == 302
    invitation = Invitation.objects.get(organisation=company_a)
    assert invitation.email == "new.person@example.com"
    assert invitation.role == "auditor"
    assert invitation.invited_by == owner_admin

    [message] = mail.outbox
    assert message.to == ["new.person@example.com"]
    assert "Company A" in message.subject
    [link] = [
        url for url in links_in_last_email("new.person@example.com") if "/invitations/" in url
    ]
    raw_token = link.rstrip("/").rsplit("/", 1)[1]
    assert raw_token not in invitation.token_hash
    assert raw_token not in all_event_text()

    [event] = events("invitation.sent")
    assert event.organisation_id == company_a.pk
    assert event.after["role"] == "auditor"


@pytest.mark.parametrize("role", ["staff", "superadmin", "", "ADMIN", "admin;drop"])
def test_invite_with_a_role_the_organisation_does_not_have_is_a_form_error(
    login: Callable, owner_admin: User, role: str, django_capture_on_commit_callbacks: Callable
) -> None:
    response = invite(login(owner_admin), "x@example.com", role, django_capture_on_commit_callbacks)
    assert response.status_code == 400
    assert (
        "Select a valid choice" in response.content.decode()
        or "required" in response.content.decode()
    )
    assert not Invitation.objects.exists()
    assert not mail.outbox


@pytest.mark.parametrize("email", ["", "not-an-email", "a@b", "x" * 300 + "@example.com"])
def test_invite_with_a_bad_email_is_a_form_error(
    login: Callable, owner_admin: User, email: str, django_capture_on_commit_callbacks: Callable
) -> None:
    response = invite(login(owner_admin), email, "auditor", django_capture_on_commit_callbacks)
    assert response.status_code == 400
    assert not Invitation.objects.exists()


def test_inviting_an_existing_member_or_an_open_invitation_is_refused(
    login: Callable,
    owner_admin: User,
    auditor: User,
    django_capture_on_commit_callbacks: Callable,
) -> None:
    client = login(owner_admin)
    response = invite(client, auditor.email.upper(), "auditor", django_capture_on_commit_callbacks)
    assert response.status_code == 400
    assert "already a member" in response.content.decode()

    invite(client, "new@example.com", "auditor", django_capture_on_commit_callbacks)
    response = invite(client, "new@example.com", "admin", django_capture_on_commit_callbacks)
    assert response.status_code == 400
    assert "open invitation" in response.content.decode()
    assert Invitation.objects.count() == 1


@pytest.mark.parametrize(
    "url",
    [
        "/organisation/members/invite/",
        "/organisation/members/{member}/role/",
        "/organisation/members/{member}/remove/",
        "/organisation/invitations/{invitation}/resend/",
        "/organisation/invitations/{invitation}/cancel/",
    ],
)
def test_admin_actions_are_forbidden_to_other_roles(
    login: Callable, partner_staff: User, partner_admin: User, company_b: Organisation, url: str
) -> None:
    member = Membership.objects.get(user=partner_admin)
    invitation = Invitation.objects.create(
        organisation=company_b,
        email="pending@example.com",
        role="staff",
        token_hash="0" * 64,
        expires_at="2099-01-01T00:00:00Z",
    )
    response = login(partner_staff).post(
        url.format(member=member.pk, invitation=invitation.pk), {"role": "admin"}
    )
    assert response.status_code == 403
    assert Membership.objects.get(user=partner_admin).role == "admin"
    invitation.refresh_from_db()
    assert invitation.cancelled_at is None


def test_auditor_cannot_invite(login: Callable, auditor: User) -> None:
    response = login(auditor).post(
        "/organisation/members/invite/", {"email": "x@example.com", "role": "admin"}
    )
    assert response.status_code == 403
    assert not Invitation.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "/organisation/members/invite/",
        "/organisation/members/{member}/role/",
        "/organisation/invitations/{invitation}/resend/",
        "/organisation/invitations/{invitation}/cancel/",
        "/organisation/switch/",
    ],
)
def test_mutations_refuse_get(
    login: Callable, owner_admin: User, company_a: Organisation, url: str
) -> None:
    member = Membership.objects.get(user=owner_admin)
    invitation = Invitation.objects.create(
        organisation=company_a,
        email="pending@example.com",
        role="auditor",
        token_hash="1" * 64,
        expires_at="2099-01-01T00:00:00Z",
    )
    response = login(owner_admin).get(url.format(member=member.pk, invitation=invitation.pk))
    assert response.status_code == 405


def test_resend_issues_a_new_link_and_the_old_one_stops_working(
    login: Callable, owner_admin: User, django_capture_on_commit_callbacks: Callable
) -> None:
    client = login(owner_admin)
    invite(client, "new@example.com", "auditor", django_capture_on_commit_callbacks)
    [first_link] = [u for u in links_in_last_email("new@example.com") if "/invitations/" in u]
    invitation = Invitation.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/organisation/invitations/{invitation.pk}/resend/")
    assert response.status_code == 302
    [second_link] = [u for u in links_in_last_email("new@example.com") if "/invitations/" in u]
    assert first_link != second_link
    anonymous = Client()
    assert anonymous.get(first_link.split("testserver")[1]).status_code == 404
    assert anonymous.get(second_link.split("testserver")[1]).status_code == 200
    assert len(events("invitation.resent")) == 1


def test_cancel_closes_the_invitation_and_its_link(
    login: Callable, owner_admin: User, django_capture_on_commit_callbacks: Callable
) -> None:
    client = login(owner_admin)
    invite(client, "new@example.com", "auditor", django_capture_on_commit_callbacks)
    [link] = [u for u in links_in_last_email("new@example.com") if "/invitations/" in u]
    invitation = Invitation.objects.get()
    assert client.post(f"/organisation/invitations/{invitation.pk}/cancel/").status_code == 302
    invitation.refresh_from_db()
    assert invitation.cancelled_at is not None
    assert Client().get(link.split("testserver")[1]).status_code == 410
    # A second click changes nothing and records nothing more.
    assert client.post(f"/organisation/invitations/{invitation.pk}/cancel/").status_code == 302
    assert len(events("invitation.cancelled")) == 1


def _without_csrf(content: bytes) -> bytes:
    # The CSRF token and the request id (on every error page) differ on every response.
    content = re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", content)
    return re.sub(rb'data-testid="request-id">[^<]*<', b"", content)


def test_foreign_and_missing_ids_are_404_alike(
    login: Callable,
    owner_admin: User,
    foreign_owner_admin: User,
    company_c: Organisation,
) -> None:
    foreign_member = Membership.objects.get(user=foreign_owner_admin)
    foreign_invitation = Invitation.objects.create(
        organisation=company_c,
        email="theirs@example.com",
        role="auditor",
        token_hash="2" * 64,
        expires_at="2099-01-01T00:00:00Z",
    )
    client = login(owner_admin)
    missing = "00000000-0000-4000-8000-000000000000"
    for path in (
        "/organisation/members/{}/role/",
        "/organisation/members/{}/remove/",
        "/organisation/invitations/{}/resend/",
        "/organisation/invitations/{}/cancel/",
    ):
        target = foreign_member.pk if "members" in path else foreign_invitation.pk
        foreign = client.post(path.format(target), {"m-x-role": "auditor"})
        absent = client.post(path.format(missing), {"m-x-role": "auditor"})
        assert foreign.status_code == absent.status_code == 404
        assert _without_csrf(foreign.content) == _without_csrf(absent.content)
    foreign_member.refresh_from_db()
    assert foreign_member.role == "admin"
    foreign_invitation.refresh_from_db()
    assert foreign_invitation.cancelled_at is None


def test_change_role(login: Callable, owner_admin: User, auditor: User) -> None:
    member = Membership.objects.get(user=auditor)
    response = login(owner_admin).post(
        f"/organisation/members/{member.pk}/role/", {f"m-{member.pk}-role": "admin"}
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.role == "admin"
    [event] = events("member.role_changed")
    assert event.before == {"role": "auditor"}
    assert event.after == {"role": "admin"}


def test_change_role_to_a_forged_value_changes_nothing(
    login: Callable, owner_admin: User, auditor: User
) -> None:
    member = Membership.objects.get(user=auditor)
    client = login(owner_admin)
    for forged in ("staff", "root", "", "a" * 5000):
        response = client.post(
            f"/organisation/members/{member.pk}/role/", {f"m-{member.pk}-role": forged}
        )
        assert response.status_code == 302
        member.refresh_from_db()
        assert member.role == "auditor"
    assert "Choose one of" in client.get("/organisation/members/").content.decode()
    assert not events("member.role_changed")


def test_the_last_admin_cannot_be_demoted_or_removed(login: Callable, owner_admin: User) -> None:
    member = Membership.objects.get(user=owner_admin)
    client = login(owner_admin)
    client.post(f"/organisation/members/{member.pk}/role/", {f"m-{member.pk}-role": "auditor"})
    member.refresh_from_db()
    assert member.role == "admin"
    response = client.post(f"/organisation/members/{member.pk}/remove/")
    assert response.status_code == 302
    assert Membership.objects.filter(pk=member.pk).exists()
    assert "only admin" in client.get("/organisation/members/").content.decode()


def test_sensitive_actions_ask_to_reauthenticate_first(
    login: Callable, owner_admin: User, auditor: User
) -> None:
    member = Membership.objects.get(user=auditor)
    client = login(owner_admin, reauthenticated=False)
    response = client.post(
        f"/organisation/members/{member.pk}/role/", {f"m-{member.pk}-role": "admin"}
    )
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/reauthenticate/")
    member.refresh_from_db()
    assert member.role == "auditor"

    # After the password, allauth replays the suspended POST.
    response = client.post(
        response["Location"], {"password": "Quiet-harbour-lantern-42"}, follow=True
    )
    member.refresh_from_db()
    assert member.role == "admin"


def test_inviting_asks_a_stale_session_to_reauthenticate_first(
    login: Callable, owner_admin: User
) -> None:
    # An invitation hands out a role (admin included) as surely as changing one does.
    client = login(owner_admin, reauthenticated=False)
    response = client.post(
        "/organisation/members/invite/", {"email": "new@company-a.example", "role": "admin"}
    )
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/reauthenticate/")
    assert not Invitation.objects.exists()

    response = client.post(
        response["Location"], {"password": "Quiet-harbour-lantern-42"}, follow=True
    )
    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.role) == ("new@company-a.example", "admin")


def test_remove_member_ends_their_sessions_at_once(
    login: Callable, owner_admin: User, auditor: User, company_a: Organisation
) -> None:
    victim = Client()
    victim_login = victim.post(
        "/accounts/login/", {"login": auditor.email, "password": "Quiet-harbour-lantern-42"}
    )
    assert victim_login.status_code == 302
    assert victim.get("/").status_code == 200

    member = Membership.objects.get(user=auditor)
    client = login(owner_admin)
    confirm = client.get(f"/organisation/members/{member.pk}/remove/")
    assert confirm.status_code == 200
    assert auditor.email in confirm.content.decode()
    response = client.post(f"/organisation/members/{member.pk}/remove/")
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=member.pk).exists()

    after = victim.get("/organisation/members/")
    assert after.status_code == 302
    assert after["Location"].startswith("/accounts/login/")
    [event] = events("member.removed")
    assert event.before == {"email": auditor.email, "role": "auditor"}
    assert event.organisation_id == company_a.pk


def test_a_removed_member_keeps_their_other_organisations(
    login: Callable, owner_admin: User, company_b: Organisation, company_a: Organisation
) -> None:
    both = make_member(company_a, "auditor", email="both@example.com")
    Membership.objects.create(user=both, organisation=company_b, role="staff")
    member = Membership.objects.get(user=both, organisation=company_a)
    login(owner_admin).post(f"/organisation/members/{member.pk}/remove/")
    assert list(Membership.objects.filter(user=both).values_list("organisation", flat=True)) == [
        company_b.pk
    ]
    page = login(both).get("/")
    assert page.status_code == 200
    assert "Company B" in page.content.decode()


def test_member_removed_hook_runs_inside_the_removal_and_can_roll_it_back(
    owner_admin: User, auditor: User, company_a: Organisation
) -> None:
    member = Membership.objects.get(user=auditor)
    seen: list[str] = []

    def write_then_fail(sender: type, *, membership: Membership, **_: object) -> None:
        # A receiver's own writes share the removal's transaction: both stand or fall together.
        seen.append(membership.user.email)
        Organisation.objects.filter(pk=company_a.pk).update(name="Written by the receiver")
        raise RuntimeError("a receiver failed")

    hooks.member_removed.connect(write_then_fail, dispatch_uid="test.write_then_fail")
    try:
        with pytest.raises(RuntimeError):
            services.membership_remove(membership=member, removed_by=owner_admin)
    finally:
        hooks.member_removed.disconnect(dispatch_uid="test.write_then_fail")
    assert seen == [auditor.email]
    assert Membership.objects.filter(pk=member.pk).exists()
    assert Organisation.objects.get(pk=company_a.pk).name == company_a.name
    assert list(events("member.removed")) == []


def test_membership_is_checked_on_every_request(
    login: Callable, auditor: User, company_a: Organisation
) -> None:
    client = login(auditor)
    assert client.get("/organisation/members/").status_code == 200
    Membership.objects.filter(user=auditor).delete()  # behind the session's back
    response = client.get("/organisation/members/")
    assert response.status_code == 302
    assert response["Location"] == "/organisation/none/"
    assert client.get("/organisation/none/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_failed_invitation_email_keeps_the_invitation_and_says_so(
    login: Callable, owner_admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Transactional: the email goes out when the service's own transaction commits, as in
    # production, not when a test-wide transaction would end.
    from accounts import emails

    def smtp_down(**kwargs: object) -> None:
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(emails, "send_invitation", smtp_down)
    client = login(owner_admin)
    response = client.post(
        "/organisation/members/invite/", {"email": "new@example.com", "role": "auditor"}
    )
    assert response.status_code == 302
    assert Invitation.objects.filter(email="new@example.com").exists()
    page = client.get("/organisation/members/").content.decode()
    assert "the email could not be sent" in page
