"""Emails the accounts app sends itself (allauth sends its own through the account adapter).

Each is written in its recipient's language and time zone (`person_locale`): the person
with that address when the portal knows them, else English and UTC, never the sender's.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend
from django.template.loader import render_to_string
from django.utils.translation import gettext

from accounts.models import Invitation, Membership, User
from core.i18n import recipient_locale


@contextmanager
def person_locale(person: User | None) -> Iterator[None]:
    """Render a message to `person` in their language and time zone."""
    with recipient_locale(
        language=person.language if person else None,
        time_zone=person.time_zone if person else None,
    ):
        yield


def subject_prefix() -> str:
    """ACCOUNT_EMAIL_SUBJECT_PREFIX in the active language ("[Partner Access Portal] ")."""
    name = settings.ACCOUNT_EMAIL_SUBJECT_PREFIX.strip().strip("[]")
    return f"[{gettext(name)}] "


def send_templated_email(
    *,
    template_prefix: str,
    to: str,
    context: dict,
    recipient: User | None = None,
    connection: BaseEmailBackend | None = None,
) -> None:
    """Render `<prefix>_subject.txt`, `<prefix>_message.txt` and `<prefix>_message.html` in
    the language and time zone of `recipient`, or else of the person the address belongs
    to. `connection`: an open mail connection to send through (many mails, one handshake);
    by default one of its own."""
    if recipient is None:
        recipient = User.objects.filter(email__iexact=to).first()
    with person_locale(recipient):
        rendered_subject = render_to_string(f"{template_prefix}_subject.txt", context)
        subject = subject_prefix() + " ".join(rendered_subject.split())
        text = render_to_string(f"{template_prefix}_message.txt", context)
        html = render_to_string(f"{template_prefix}_message.html", context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        connection=connection,
    )
    message.attach_alternative(html, "text/html")
    message.send()


def send_invitation(*, invitation: Invitation, accept_url: str) -> None:
    inviter = invitation.invited_by
    send_templated_email(
        template_prefix="accounts/email/invitation",
        to=invitation.email,
        context={
            "invitation": invitation,
            "organisation": invitation.organisation,
            # The lazy label: translated when rendered, in the recipient's language.
            "role": Membership.Role(invitation.role).label,
            "inviter_name": (inviter.get_full_name() or inviter.email) if inviter else None,
            "accept_url": accept_url,
            "expires_at": invitation.expires_at,
        },
    )


def send_mfa_reset(*, person: User, sign_in_url: str) -> None:
    """An operator removed every second factor of `person`: they enrol again at next sign-in."""
    send_templated_email(
        template_prefix="accounts/email/mfa_reset",
        to=person.email,
        recipient=person,
        context={"person": person, "sign_in_url": sign_in_url},
    )
