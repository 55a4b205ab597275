"""The access-review pages: the owner schedules reviews and follows each round; both sides
answer their questions. Thin views over `reviews.selectors` and `reviews.services`.

Owner admins schedule and start rounds; the owner's approvers answer for delegations and the
partner's admins for their staff; auditors read. Another organisation's ids answer 404;
mutations are POST-only with CSRF and ask for a recent sign-in.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from accounts.form_posts import FormPage
from accounts.models import Organisation
from accounts.permissions import (
    ADMIN,
    AUDITOR,
    AuthenticatedHttpRequest,
    current_organisation_of,
    is_admin,
    organisation_member_required,
)
from delegations.lifecycle.transitions import DelegationConflict
from delegations.models import ReviewCampaign, ReviewItem
from delegations.reviews import selectors, services
from delegations.reviews.forms import OwnerAnswerForm, PartnerAnswerForm, ReviewScheduleForm

Side = services.Side


_owner = current_organisation_of(
    Organisation.Kind.OWNER,
    refusal=gettext_lazy("Only resource owner organisations schedule access reviews."),
)


def _index(
    request: AuthenticatedHttpRequest, *, form: ReviewScheduleForm | None = None, status: int = 200
) -> HttpResponse:
    organisation = request.organisation
    schedule = selectors.review_schedule_of(owner=organisation) if organisation.is_owner else None
    if form is None and organisation.is_owner:
        initial: dict[str, Any] = {}
        if schedule is not None:
            initial = {
                "every_days": schedule.every_days,
                "deadline_days": schedule.deadline_days,
                "default_outcome": schedule.default_outcome,
            }
        form = ReviewScheduleForm(initial=initial)
    return render(
        request,
        "delegations/reviews/index.html",
        {
            "organisation": organisation,
            "schedule": schedule,
            "form": form,
            "campaigns": selectors.campaigns_for(organisation=organisation)[:50],
            "is_admin": is_admin(request),
        },
        status=status,
    )


@require_GET
@organisation_member_required(roles=(ADMIN, AUDITOR))
def access_reviews(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _index(request)


def _back() -> HttpResponse:
    return redirect("delegations:access_reviews")


# The index's actions: the page again with the bound schedule form (400), or back to it.
INDEX = FormPage(redisplay=partial(_index, status=400), back=_back, refused=(ValidationError,))


@require_POST
@organisation_member_required(roles=[ADMIN])
def access_review_schedule(request: AuthenticatedHttpRequest) -> HttpResponse:
    owner = _owner(request)
    return replace(INDEX, refused=()).submit(
        request,
        ReviewScheduleForm(request.POST),
        lambda data, _step_up: services.review_schedule_set(
            owner=owner,
            set_by=request.user,
            every_days=data["every_days"],
            deadline_days=data["deadline_days"],
            default_outcome=data["default_outcome"],
            next_run_at=data["next_run_at"],
        ),
        done=lambda _schedule: messages.success(request, _("Access reviews are scheduled.")),
    )


def _started(request: AuthenticatedHttpRequest, campaign: ReviewCampaign) -> HttpResponse:
    messages.success(request, _("The access review started; both sides have been asked."))
    return redirect("delegations:access_review", campaign.pk)


@require_POST
@organisation_member_required(roles=[ADMIN])
def access_review_start(request: AuthenticatedHttpRequest) -> HttpResponse:
    owner = _owner(request)
    return INDEX.submit(
        request,
        None,
        lambda _data, _step_up: services.review_campaign_start(
            owner=owner, started_by=request.user
        ),
        done=lambda campaign: _started(request, campaign),
    )


def _campaign_page(
    request: AuthenticatedHttpRequest,
    campaign_id: object,
    *,
    bound: dict[object, OwnerAnswerForm | PartnerAnswerForm] | None = None,
    status: int = 200,
) -> HttpResponse:
    organisation = request.organisation
    campaign = selectors.campaign_get_for(organisation=organisation, campaign_id=campaign_id)
    bound = bound or {}
    rows: dict[str, list[dict[str, Any]]] = {Side.OWNER: [], Side.PARTNER: []}
    for item in selectors.items_for(organisation=organisation, campaign=campaign):
        form: OwnerAnswerForm | PartnerAnswerForm | None = None
        answerable = (
            item.is_pending
            and campaign.takes_answers
            and is_admin(request)
            and services.review_refusal(item=item, user=request.user) is None
        )
        if answerable:
            form_class = OwnerAnswerForm if item.side == Side.OWNER else PartnerAnswerForm
            form = bound.get(item.pk) or form_class(prefix=str(item.pk))
        rows[item.side].append({"item": item, "form": form})
    return render(
        request,
        "delegations/reviews/campaign.html",
        {
            "organisation": organisation,
            "campaign": campaign,
            "owner_rows": rows[Side.OWNER],
            "partner_rows": rows[Side.PARTNER],
        },
        status=status,
    )


@require_GET
@organisation_member_required(roles=(ADMIN, AUDITOR))
def access_review(request: AuthenticatedHttpRequest, campaign_id: str) -> HttpResponse:
    return _campaign_page(request, campaign_id)


def _campaign_redisplay(
    request: AuthenticatedHttpRequest, item: ReviewItem, *, form: Any
) -> HttpResponse:
    return _campaign_page(request, item.campaign_id, bound={item.pk: form}, status=400)


# A campaign's answers: the campaign again with the bound answer (400), or back to it.
CAMPAIGN = FormPage(
    redisplay=_campaign_redisplay,
    back=lambda item: redirect("delegations:access_review", item.campaign_id),
    refused=(PermissionDenied, DelegationConflict),
)


@require_POST
@organisation_member_required(roles=[ADMIN])
def access_review_answer(request: AuthenticatedHttpRequest, item_id: str) -> HttpResponse:
    item = selectors.item_get_for(organisation=request.organisation, item_id=item_id)
    form_class = OwnerAnswerForm if item.side == Side.OWNER else PartnerAnswerForm
    return CAMPAIGN.submit(
        request,
        form_class(request.POST, prefix=str(item.pk)),
        lambda data, _step_up: services.review_decide(
            item=item,
            decided_by=request.user,
            decision=data["decision"],
            new_ends_at=data.get("new_ends_at"),
            note=data["note"],
        ),
        subject=item,
        done=lambda _item: messages.success(request, _("Answer recorded.")),
    )
