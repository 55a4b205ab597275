"""`manage.py mfa_reset --email EMAIL --reason "..."`: remove every second factor of a person
who lost them all (phone and recovery codes), sign them out everywhere and email them; audited
as mfa.reset_by_operator with the reason. They enrol again at their next sign-in."""

import getpass

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import mfa_services, selectors
from audit.context import audit_context


class Command(BaseCommand):
    help = (
        "Reset a person's two-factor authentication (audited, with a reason): remove their "
        "authenticators, end their sessions and email them to enrol again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True, help="the person's sign-in address")
        parser.add_argument(
            "--reason", required=True, help="why, for the audit log (e.g. the ticket)"
        )
        parser.add_argument(
            "--operator",
            default="",
            help="who resets it, for the audit log (default: the system user running this)",
        )

    def handle(self, *args: object, **options: object) -> None:
        email = str(options["email"])
        user = selectors.user_get_by_email(email=email)
        if user is None:
            raise CommandError(f"No account has the address {email}: nothing was changed.")
        operator = str(options["operator"] or "").strip() or f"{getpass.getuser()} (mfa_reset)"
        try:
            with audit_context(source="command:mfa_reset"):
                report = mfa_services.mfa_reset_by_operator(
                    user=user, reason=str(options["reason"]), operator_label=operator
                )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        self.stdout.write(
            f"Reset two-factor authentication of {user.email}: removed "
            f"{', '.join(report.removed)}; ended {report.sessions_ended} session"
            f"{'s' if report.sessions_ended != 1 else ''}. They were emailed to enrol again "
            "at their next sign-in."
        )
