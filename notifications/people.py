"""Notices about people in organisations: a member invited (to the other admins) and a
member removed (to the person and the admins)."""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts.models import Invitation, Membership, User
from core.i18n import Text, lower_lazy
from notifications.events import NotificationEvent
from notifications.services import Notice, notify, organisation_admins


def member_removed_notify(*, membership: Membership, removed_by: User | None) -> None:
    organisation = membership.organisation
    person = membership.user
    notify(
        key=f"member.removed:{membership.pk}",
        notice=Notice(
            event=NotificationEvent.MEMBER_REMOVED,
            title=Text(
                _("%(person)s left %(organisation)s"),
                person=person.email,
                organisation=organisation.name,
            ),
            summary=Text(
                _("%(person)s is no longer a member of %(organisation)s."),
                person=person.email,
                organisation=organisation.name,
            ),
            link_path=reverse("accounts:members"),
            facts=((_("Removed by"), removed_by.email if removed_by else _("the portal")),),
        ),
        organisation=organisation,
        people=[person, *organisation_admins(organisation)],
    )


def member_invited_notify(*, invitation: Invitation, invited_by: User) -> None:
    organisation = invitation.organisation
    notify(
        key=f"member.invited:{invitation.pk}",
        notice=Notice(
            event=NotificationEvent.MEMBER_INVITED,
            title=Text(
                _("%(person)s was invited to %(organisation)s"),
                person=invitation.email,
                organisation=organisation.name,
            ),
            summary=Text(
                _("%(inviter)s invited %(person)s as %(role)s."),
                inviter=invited_by.email,
                person=invitation.email,
                # The lazy label, lower-cased when read: in the recipient's language.
                role=lower_lazy(Membership.Role(invitation.role).label),
            ),
            link_path=reverse("accounts:members"),
            facts=((_("Invited by"), invited_by.email),),
        ),
        organisation=organisation,
        # The invitee gets the invitation itself (with its link); the inviter knows.
        people=[a for a in organisation_admins(organisation) if a.pk != invited_by.pk],
    )
