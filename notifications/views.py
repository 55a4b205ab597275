"""Notification pages: each person's email preferences; for admins, the organisation's chat
channels (add, change, test, delete, see and retry deliveries) and, for owners, the
escalation contact. Thin views over `notifications.selectors` and `.services`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from accounts.permissions import (
    ADMIN,
    AuthenticatedHttpRequest,
    is_admin,
    organisation_member_required,
)
from accounts.selectors import organisation_members
from core.web import add_form_errors, no_store, report_refusal
from notifications import selectors, services
from notifications.forms import ChannelEditForm, ChannelForm, EscalationForm, PreferencesForm
from notifications.models import Channel

INDEX = "notifications:index"


def _member_users(request: AuthenticatedHttpRequest) -> QuerySet[User]:
    ids = organisation_members(organisation=request.organisation).values_list("user_id", flat=True)
    return User.objects.filter(pk__in=list(ids)).order_by("email")


def _escalation_form(request: AuthenticatedHttpRequest, data: object = None) -> EscalationForm:
    contact = selectors.escalation_contact_of(organisation=request.organisation)
    return EscalationForm(
        data, members=_member_users(request), initial={"contact": contact.pk if contact else None}
    )


def _index(
    request: AuthenticatedHttpRequest,
    *,
    preferences_form: PreferencesForm | None = None,
    escalation_form: EscalationForm | None = None,
    status: int = 200,
) -> HttpResponse:
    admin = is_admin(request)
    muted = set(selectors.muted_for(user=request.user))
    if preferences_form is None:
        wanted = [value for value, _label in PreferencesForm.base_fields["email"].choices]  # type: ignore[attr-defined]
        preferences_form = PreferencesForm(
            initial={"email": [value for value in wanted if value not in muted]}
        )
    show_escalation = admin and request.organisation.is_owner
    if show_escalation and escalation_form is None:
        escalation_form = _escalation_form(request)
    context = {
        "is_admin": admin,
        "preferences_form": preferences_form,
        "channels": list(selectors.channels_of_organisation(organisation=request.organisation))
        if admin
        else [],
        "escalation_form": escalation_form if show_escalation else None,
    }
    return render(request, "notifications/index.html", context, status=status)


@require_GET
@organisation_member_required
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _index(request)


@require_POST
@organisation_member_required
def preferences(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = PreferencesForm(request.POST)
    if not form.is_valid():
        return _index(request, preferences_form=form, status=400)
    offered = [value for value, _label in form.fields["email"].choices]  # type: ignore[attr-defined]
    wanted = set(form.cleaned_data["email"])
    services.preferences_update(
        user=request.user, muted=[value for value in offered if value not in wanted]
    )
    messages.success(request, _("Your email notifications are saved."))
    return redirect(INDEX)


@require_POST
@organisation_member_required(roles=[ADMIN])
def escalation(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not request.organisation.is_owner:
        raise PermissionDenied(_("Escalation is about requests an owner decides."))
    form = _escalation_form(request, request.POST)
    if not form.is_valid():
        return _index(request, escalation_form=form, status=400)
    try:
        services.escalation_set(
            organisation=request.organisation,
            contact=form.cleaned_data["contact"],
            changed_by=request.user,
        )
    except ValidationError as error:
        add_form_errors(form, error)
        return _index(request, escalation_form=form, status=400)
    messages.success(request, _("The escalation contact is saved."))
    return redirect(INDEX)


@sensitive_post_parameters("url", "secret")
@require_http_methods(["GET", "POST"])
@organisation_member_required(roles=[ADMIN])
def channel_add(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ChannelForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        saved = _save_channel(
            request,
            form,
            lambda settings: services.channel_create(
                organisation=request.organisation, created_by=request.user, **settings
            ),
            success=_("Channel added. Send a test message to see it arrive."),
        )
        if saved is not None:
            return saved
    response = render(request, "notifications/channel_add.html", {"form": form}, status=status)
    return no_store(response)


def _save_channel(
    request: AuthenticatedHttpRequest,
    form: ChannelForm | ChannelEditForm,
    save: Callable[[dict[str, Any]], Channel],
    *,
    success: str,
) -> HttpResponse | None:
    """Hand a valid form's fields (the channel's settings, one for one) to `save`; when it
    takes them, say so and show the channel. None: the form, with the service's errors on
    it, is to be shown again."""
    if not form.is_valid():
        return None
    try:
        channel = save(form.cleaned_data)
    except ValidationError as error:
        add_form_errors(form, error)
        return None
    messages.success(request, success)
    return redirect("notifications:channel", channel_id=channel.pk)


def _channel_page(
    request: AuthenticatedHttpRequest,
    channel: Channel,
    *,
    form: ChannelEditForm | None = None,
    status: int = 200,
) -> HttpResponse:
    if form is None:
        form = ChannelEditForm(
            initial={
                "name": channel.name,
                "events": channel.events,
                "is_active": channel.is_active,
                "language": channel.language,
            }
        )
    context = {
        "channel": channel,
        "form": form,
        "deliveries": selectors.channel_recent_deliveries(channel=channel),
    }
    return no_store(render(request, "notifications/channel.html", context, status=status))


@sensitive_post_parameters("url", "secret")
@require_http_methods(["GET", "POST"])
@organisation_member_required(roles=[ADMIN])
def channel(request: AuthenticatedHttpRequest, channel_id: str) -> HttpResponse:
    found = selectors.channel_get_for_organisation(
        organisation=request.organisation, channel_id=channel_id
    )
    if request.method != "POST":
        return _channel_page(request, found)
    form = ChannelEditForm(request.POST)
    saved = _save_channel(
        request,
        form,
        lambda changes: services.channel_update(channel=found, changed_by=request.user, **changes),
        success=_("Channel saved."),
    )
    if saved is not None:
        return saved
    return _channel_page(request, found, form=form, status=400)


@require_POST
@organisation_member_required(roles=[ADMIN])
def channel_test(request: AuthenticatedHttpRequest, channel_id: str) -> HttpResponse:
    found = selectors.channel_get_for_organisation(
        organisation=request.organisation, channel_id=channel_id
    )
    services.channel_send_test(channel=found, sent_by=request.user, link_path=reverse(INDEX))
    messages.success(request, _("Test message queued; its delivery shows below."))
    return redirect("notifications:channel", channel_id=found.pk)


@require_POST
@organisation_member_required(roles=[ADMIN])
def channel_delete(request: AuthenticatedHttpRequest, channel_id: str) -> HttpResponse:
    found = selectors.channel_get_for_organisation(
        organisation=request.organisation, channel_id=channel_id
    )
    services.channel_delete(channel=found, deleted_by=request.user)
    messages.success(request, _("Channel deleted."))
    return redirect(INDEX)


@require_POST
@organisation_member_required(roles=[ADMIN])
def delivery_retry(request: AuthenticatedHttpRequest, channel_id: str) -> HttpResponse:
    found = selectors.channel_get_for_organisation(
        organisation=request.organisation, channel_id=channel_id
    )
    delivery = selectors.delivery_get_for_channel(
        channel=found, delivery_id=str(request.POST.get("delivery", ""))
    )
    try:
        services.delivery_retry(delivery=delivery, retried_by=request.user)
    except (ValidationError, PermissionDenied) as error:
        report_refusal(request, error)
    else:
        messages.success(request, _("The delivery will be sent again."))
    return redirect("notifications:channel", channel_id=found.pk)
