"""Notices about people in organisations: a member removed (to the person and the admins)."""

from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.models import Membership, User
from notifications.events import NotificationEvent
from notifications.services import Notice, notify, organisation_admins


def member_removed_notify(*, membership: Membership, removed_by: User | None) -> None:
    organisation = membership.organisation
    person = membership.user
    notify(
        key=f"member.removed:{membership.pk}",
        notice=Notice(
            event=NotificationEvent.MEMBER_REMOVED,
            title=_("%(person)s left %(organisation)s")
            % {"person": person.email, "organisation": organisation.name},
            summary=_("%(person)s is no longer a member of %(organisation)s.")
            % {"person": person.email, "organisation": organisation.name},
            link_path=reverse("accounts:members"),
            facts=((_("Removed by"), removed_by.email if removed_by else _("the portal")),),
        ),
        organisation=organisation,
        people=[person, *organisation_admins(organisation)],
    )
