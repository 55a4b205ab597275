"""Tenant isolation crawl: every URL pattern, every persona, foreign and malformed ids.

Each pattern from `get_resolver()` is filled with ids of ANOTHER organisation's objects and
with malformed or huge values, then requested with GET and POST as anonymous and as each
persona of companies A and B. Nothing may answer 500, no 200 may show the foreign
organisations' data, and the foreign data must be unchanged afterwards.
"""

import itertools
import re
from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404
from django.utils import timezone

from accounts.models import Invitation, Membership, Organisation, User
from core.crypto import encrypt_secret
from runbooks.models import RunApproval, RunbookRun, RunbookTarget
from tests.delegations.factories import CatalogRoleFactory, CloudAccountFactory, DelegationFactory
from tests.personas import make_member

ROUTE_PARAM = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")
REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?P<body>[^()]*)\)")

# Values of the foreign organisations' data that must never appear in a page served to A or B.
FOREIGN_MARKERS = (
    "Cobalt Foreign Holdings",
    "Delta Foreign Services",
    "5566778899001122",
    "9988776655443322",
    "admin@cobalt-foreign.example",
    "staff@delta-foreign.example",
    "invitee@cobalt-foreign.example",
)


def _patterns(resolver: URLResolver, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, prefix + str(entry.pattern))
        else:
            yield prefix + str(entry.pattern), entry


def _fill(template: str, value: str) -> str:
    """One concrete path for a mixed route/regex template, every parameter set to `value`."""

    def regex_group(match: re.Match) -> str:
        body = match.group("body")
        if "|" in body and re.fullmatch(r"[\w|]+", body):
            return body.split("|")[-1]  # an alternation (admin's app_label): take a real value
        return value

    path = REGEX_GROUP.sub(regex_group, template)
    path = ROUTE_PARAM.sub(lambda m: value, path)
    path = path.replace("^", "").replace("$", "")
    return "/" + path


def crawl_paths(values: list[str]) -> list[str]:
    """Concrete paths for every pattern; fails if some pattern could not be reached at all."""
    paths: set[str] = set()
    unreached = []
    for template, _pattern in _patterns(get_resolver()):
        reached = False
        candidates = values if ("<" in template or "(?P" in template) else [""]
        if template.startswith("admin/") and len(candidates) > 2:
            # Django's admin refuses everyone who is not staff before it reads an id; two
            # values prove that without repeating hundreds of identical redirects.
            candidates = [candidates[0], candidates[-1]]
        for value in candidates:
            path = _fill(template, value)
            try:
                match = resolve(path)
            except Resolver404:
                continue  # e.g. a uuid converter refusing a malformed value: nothing to request
            if match.route.replace("^", "") == template.replace("^", ""):
                paths.add(path)
                reached = True
        if not reached:
            unreached.append(template)
    assert not unreached, f"the crawl cannot build a path for: {unreached}"
    return sorted(paths)


@pytest.fixture
def world(
    company_a: Organisation,
    company_b: Organisation,
    company_c: Organisation,
    company_d: Organisation,
    owner_admin: User,
    auditor: User,
    partner_admin: User,
    partner_staff: User,
    foreign_owner_admin: User,
    foreign_partner_staff: User,
) -> dict:
    foreign_invitation = Invitation.objects.create(
        organisation=company_c,
        email="invitee@cobalt-foreign.example",
        role="auditor",
        token_hash="f" * 64,
        invited_by=foreign_owner_admin,
        expires_at=timezone.now() + timezone.timedelta(days=3),
    )
    # A second admin in C, so "last admin" rules cannot be what protects C's data.
    make_member(company_c, "admin", email="second-admin@cobalt-foreign.example")
    foreign_run = _foreign_run(company_c, company_d, foreign_partner_staff)
    return {
        "personas": {
            "owner_admin": owner_admin,
            "auditor": auditor,
            "partner_admin": partner_admin,
            "partner_staff": partner_staff,
        },
        "foreign_ids": [
            str(Membership.objects.get(user=foreign_owner_admin).pk),
            str(Membership.objects.get(user=foreign_partner_staff).pk),
            str(foreign_invitation.pk),
            str(company_c.pk),
            str(foreign_owner_admin.pk),
            str(foreign_run.pk),
            str(foreign_run.targets.get().delegation_id),
        ],
        "foreign_invitation": foreign_invitation,
        "foreign_run": foreign_run,
    }


def _foreign_run(owner: Organisation, partner: Organisation, started_by: User) -> RunbookRun:
    """A runbook run of D over C's account (runbooks, issue 12): its pages are 404 to A and B."""
    account = CloudAccountFactory(organisation=owner)
    grant = DelegationFactory(
        catalog_role=CatalogRoleFactory(cloud_account=account, organisation=owner),
        partner=partner,
        status="active",
    )
    run = RunbookRun.objects.create(
        partner=partner,
        partner_account_uid=partner.account_uid,
        started_by=started_by,
        title="Delta Foreign Services nightly",
        command_type="RunShellScript",
        command_ciphertext=encrypt_secret("echo foreign"),
        command_sha256="0" * 64,
        target_type="All",
        status=RunbookRun.Status.AWAITING_APPROVAL,
    )
    RunbookTarget.objects.create(
        run=run,
        delegation=grant,
        owner=owner,
        account_uid=account.account_uid,
        role_name=grant.managed_role.role_name,
        region_id="cn-shanghai",
    )
    RunApproval.objects.create(run=run, owner=owner)
    return run


MALFORMED = ["0", "-1", "x" * 2048, "99999999999999999999999999", "%2e%2e%2fetc%2fpasswd", "null"]


def _snapshot() -> list:
    foreign = Organisation.objects.filter(slug__in=["cobalt", "delta"])
    return [
        sorted(foreign.values_list("pk", "name", "kind", "account_uid", "enterprise_alias")),
        sorted(
            Membership.objects.filter(organisation__in=foreign).values_list("pk", "user_id", "role")
        ),
        sorted(
            Invitation.objects.filter(organisation__in=foreign).values_list(
                "pk", "token_hash", "accepted_at", "cancelled_at", "expires_at"
            )
        ),
        sorted(
            RunbookRun.objects.filter(partner__in=foreign).values_list(
                "pk", "status", "cancel_requested_at"
            )
        ),
        sorted(RunApproval.objects.filter(owner__in=foreign).values_list("pk", "status")),
    ]


def _post_body(world: dict) -> dict:
    membership_id = world["foreign_ids"][0]
    return {
        "role": "admin",
        f"m-{membership_id}-role": "admin",
        "email": "crawler@example.com",
        "organisation": world["foreign_ids"][3],
        "code": "000000",
        "password": "not-the-password",
        "password1": "Crawl-password-123456",
        "password2": "Crawl-password-123456",
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "persona", ["anonymous", "owner_admin", "auditor", "partner_admin", "partner_staff"]
)
@pytest.mark.slow
def test_crawl_every_url_as_every_persona(world: dict, persona: str) -> None:
    paths = crawl_paths(world["foreign_ids"] + MALFORMED)
    assert "/organisation/members/{}/remove/".format(world["foreign_ids"][0]) in paths
    before = _snapshot()
    user = world["personas"].get(persona)
    client = Client(raise_request_exception=False)
    failures = []
    for path, method in itertools.product(paths, ("get", "post")):
        if user is not None and "_auth_user_id" not in client.session:
            client.force_login(user)  # a crawled sign-out or session end: sign back in
        data = _post_body(world) if method == "post" else None
        response = getattr(client, method)(path, data)
        content = b""
        if response.status_code == 200:
            # Exports stream their body.
            content = (
                b"".join(response.streaming_content) if response.streaming else response.content
            )
        body = content.decode(errors="replace")
        leaked = [marker for marker in FOREIGN_MARKERS if marker in body]
        if response.status_code >= 500 or leaked:
            failures.append((method.upper(), path[:120], response.status_code, leaked))
    assert not failures, failures
    assert _snapshot() == before
    if user is not None:
        run_id = world["foreign_run"].pk
        for name in ("detail", "live", "export_template", "export_parameters"):
            status = client.get(f"/runbooks/{run_id}/{_RUN_PAGES[name]}").status_code
            assert status in (403, 404), (name, status)
        assert client.get(f"/runbooks/{run_id}/").status_code == 404


_RUN_PAGES = {
    "detail": "",
    "live": "live/",
    "export_template": "export/template.yaml",
    "export_parameters": "export/parameters.json",
}


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["anonymous", "owner_admin"])
@pytest.mark.slow
def test_every_unsafe_request_without_a_csrf_token_is_refused(world: dict, persona: str) -> None:
    paths = crawl_paths([*world["foreign_ids"][:1], "x"])
    before = _snapshot()
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    user = world["personas"].get(persona)
    refused = {}
    for path, method in itertools.product(paths, ("post", "put", "patch", "delete")):
        if user is not None and "_auth_user_id" not in client.session:
            client.force_login(user)
        response = getattr(client, method)(path, _post_body(world) if method == "post" else None)
        refused[(method, path)] = response.status_code
    allowed = {
        key: status
        for key, status in refused.items()
        if status != 403 and not _api_refusal(key[1], status)
    }
    assert not allowed, allowed
    assert _snapshot() == before


# The REST API authenticates with a bearer token only, never the session cookie, so a forged
# cross-site request carries no credential and CSRF does not apply there. It must still refuse
# (no token: 401; the device flow's open endpoints take JSON only: 415) and change nothing.
API_PREFIX = "/api/v1/"


def _api_refusal(path: str, status: int) -> bool:
    return path.startswith(API_PREFIX) and status in (400, 401, 404, 405, 415)


@pytest.mark.django_db
def test_a_session_naming_a_foreign_organisation_is_ignored(
    world: dict, login: object, company_c: Organisation
) -> None:
    from accounts.selectors import CURRENT_ORGANISATION_SESSION_KEY

    client = login(world["personas"]["partner_staff"])  # type: ignore[operator]
    session = client.session
    session[CURRENT_ORGANISATION_SESSION_KEY] = str(company_c.pk)
    session.save()
    page = client.get("/organisation/members/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Company B" in body
    assert not [marker for marker in FOREIGN_MARKERS if marker in body]
    assert client.session[CURRENT_ORGANISATION_SESSION_KEY] != str(company_c.pk)
