"""Emails the accounts app sends itself (allauth sends its own through the account adapter)."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from accounts.models import Invitation


def send_templated_email(*, template_prefix: str, to: str, context: dict) -> None:
    """Render `<prefix>_subject.txt`, `<prefix>_message.txt` and `<prefix>_message.html`."""
    rendered_subject = render_to_string(f"{template_prefix}_subject.txt", context)
    subject = settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + " ".join(rendered_subject.split())
    text = render_to_string(f"{template_prefix}_message.txt", context)
    html = render_to_string(f"{template_prefix}_message.html", context)
    message = EmailMultiAlternatives(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[to]
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
            "role": invitation.get_role_display(),
            "inviter_name": (inviter.get_full_name() or inviter.email) if inviter else None,
            "accept_url": accept_url,
            "expires_at": invitation.expires_at,
        },
    )
