"""The break-glass page: the owner marks and reviews, the named partner person activates;
form errors save nothing; tenancy (404) and roles (403)."""

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Organisation, User
from delegations.breakglass.services import break_glass_activate, break_glass_role_set
from delegations.models import BreakGlassActivation, BreakGlassRole, CatalogRole, Delegation
from tests.delegations.lifecycle.test_views import with_mfa

pytestmark = pytest.mark.django_db
REASON = "Production database down, on-call must restart the ECS fleet"


def url(name: str, *args: object) -> str:
    return reverse(f"delegations:{name}", args=args)


@pytest.fixture
def marking(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    partner_staff: User,
    ecs_admin: CatalogRole,
    allow_b: None,
) -> BreakGlassRole:
    return break_glass_role_set(
        owner=company_a,
        set_by=owner_admin,
        catalog_role=ecs_admin,
        partner=company_b,
        people=[partner_staff],
        max_hours=4,
    )


def test_the_owner_marks_a_role_and_a_window_over_24_hours_is_a_form_error(
    login: Callable[..., Client],
    owner_admin: User,
    company_b: Organisation,
    partner_staff: User,
    ecs_admin: CatalogRole,
    allow_b: None,
) -> None:
    client = with_mfa(login(owner_admin), owner_admin)
    data = {
        "catalog_role": ecs_admin.pk,
        "partner": company_b.pk,
        "people": [partner_staff.pk],
        "max_hours": 25,
    }
    refused = client.post(url("break_glass_role_set"), data)
    assert refused.status_code == 400 and not BreakGlassRole.objects.exists()
    assert client.post(url("break_glass_role_set"), {**data, "max_hours": 4}).status_code == 302
    page = client.get(url("break_glass"))
    assert page.status_code == 200 and partner_staff.email in page.content.decode()


def test_the_named_person_activates_and_bad_input_saves_nothing(
    login: Callable[..., Client], marking: BreakGlassRole, partner_staff: User
) -> None:
    # The activation is a step-up with two-factor authentication when the portal requires it.
    client = with_mfa(login(partner_staff), partner_staff)
    page = client.get(url("break_glass"))
    assert page.status_code == 200 and "ecs-admin" in page.content.decode()
    prefix = str(marking.pk)
    target = url("break_glass_activate", marking.pk)
    for bad in ({"hours": 25, "reason": REASON}, {"hours": 2, "reason": "short"}):
        response = client.post(target, {f"{prefix}-{k}": v for k, v in bad.items()})
        assert response.status_code == 400
    assert not Delegation.objects.exists()
    done = client.post(target, {f"{prefix}-hours": 2, f"{prefix}-reason": REASON})
    assert done.status_code == 302
    activation = BreakGlassActivation.objects.get()
    assert done["Location"] == url("break_glass") + f"#activation-{activation.pk}"


def test_a_person_not_named_is_refused_and_another_partner_gets_404(
    login: Callable[..., Client],
    marking: BreakGlassRole,
    partner_admin: User,
    foreign_partner_staff: User,
) -> None:
    prefix = str(marking.pk)
    data = {f"{prefix}-hours": 2, f"{prefix}-reason": REASON}
    refused = with_mfa(login(partner_admin), partner_admin).post(
        url("break_glass_activate", marking.pk), data
    )
    assert refused.status_code == 302 and not Delegation.objects.exists()
    foreign = login(foreign_partner_staff).post(url("break_glass_activate", marking.pk), data)
    assert foreign.status_code == 404


def test_review_by_an_owner_admin_and_403_for_the_auditor(
    login: Callable[..., Client],
    marking: BreakGlassRole,
    partner_staff: User,
    owner_admin_2: User,
    auditor: User,
    foreign_owner_admin: User,
) -> None:
    activation = break_glass_activate(
        marking=marking, activated_by=partner_staff, reason=REASON, hours=2, with_mfa=True
    )
    target = url("break_glass_review", activation.pk)
    assert login(auditor).get(url("break_glass")).status_code == 200
    assert login(auditor).post(target, {"confirm": ""}).status_code == 403
    assert login(foreign_owner_admin).post(target, {"confirm": ""}).status_code == 404
    assert login(owner_admin_2).get(target).status_code == 405
    client = with_mfa(login(owner_admin_2), owner_admin_2)
    assert client.post(target, {"revoke": "", "note": "No outage"}).status_code == 302
    assert BreakGlassActivation.objects.get().review == BreakGlassActivation.Review.REVOKED
