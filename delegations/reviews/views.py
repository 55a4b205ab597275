"""The access-review pages: the owner schedules reviews and follows each round; both sides
answer their questions. Thin views over `reviews.selectors` and `reviews.services`.

Owner admins schedule and start rounds; the owner's approvers answer for delegations and the
partner's admins for their staff; auditors read. Another organisation's ids answer 404;
mutations are POST-only with CSRF and ask for a recent sign-in.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Organisation
from accounts.permissions import (
    ADMIN,
    AUDITOR,
    AuthenticatedHttpRequest,
    is_admin,
    organisation_member_required,
    organisation_of_kind,
    step_up,
)
from core.web import add_form_errors, report_refusal
from delegations.lifecycle.services import DelegationConflict
from delegations.reviews import selectors, services
from delegations.reviews.forms import OwnerAnswerForm, PartnerAnswerForm, ReviewScheduleForm

Side = services.Side


def _owner(request: AuthenticatedHttpRequest) -> Organisation:
    return organisation_of_kind(
        request,
        Organisation.Kind.OWNER,
        refusal=_("Only resource owner organisations schedule access reviews."),
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


@require_POST
@organisation_member_required(roles=[ADMIN])
def access_review_schedule(request: AuthenticatedHttpRequest) -> HttpResponse:
    owner = _owner(request)
    form = ReviewScheduleForm(request.POST)
    if form.is_valid():
        confirmation = step_up(request)
        if confirmation.response is not None:
            return confirmation.response
        data = form.cleaned_data
        try:
            services.review_schedule_set(
                owner=owner,
                set_by=request.user,
                every_days=data["every_days"],
                deadline_days=data["deadline_days"],
                default_outcome=data["default_outcome"],
                next_run_at=data["next_run_at"],
            )
        except ValidationError as error:
            add_form_errors(form, error)
        else:
            messages.success(request, _("Access reviews are scheduled."))
            return redirect("delegations:access_reviews")
    return _index(request, form=form, status=400)


@require_POST
@organisation_member_required(roles=[ADMIN])
def access_review_start(request: AuthenticatedHttpRequest) -> HttpResponse:
    owner = _owner(request)
    confirmation = step_up(request)
    if confirmation.response is not None:
        return confirmation.response
    try:
        campaign = services.review_campaign_start(owner=owner, started_by=request.user)
    except ValidationError as error:
        report_refusal(request, error)
        return redirect("delegations:access_reviews")
    messages.success(request, _("The access review started; both sides have been asked."))
    return redirect("delegations:access_review", campaign.pk)


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
            and campaign.status == campaign.Status.OPEN
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


@require_POST
@organisation_member_required(roles=[ADMIN])
def access_review_answer(request: AuthenticatedHttpRequest, item_id: str) -> HttpResponse:
    item = selectors.item_get_for(organisation=request.organisation, item_id=item_id)
    form_class = OwnerAnswerForm if item.side == Side.OWNER else PartnerAnswerForm
    form: Any = form_class(request.POST, prefix=str(item.pk))
    if form.is_valid():
        confirmation = step_up(request)
        if confirmation.response is not None:
            return confirmation.response
        try:
            services.review_decide(
                item=item,
                decided_by=request.user,
                decision=form.cleaned_data["decision"],
                new_ends_at=form.cleaned_data.get("new_ends_at"),
                note=form.cleaned_data["note"],
            )
        except ValidationError as error:
            add_form_errors(form, error)
        except (PermissionDenied, DelegationConflict) as error:
            report_refusal(request, error)
            return redirect("delegations:access_review", item.campaign_id)
        else:
            messages.success(request, _("Answer recorded."))
            return redirect("delegations:access_review", item.campaign_id)
    return _campaign_page(request, item.campaign_id, bound={item.pk: form}, status=400)
