"""`manage.py rotate_secrets`: re-encrypt every stored secret with the newest key: cloud
AccessKey secrets, and the TOTP keys and recovery-code seeds of two-factor authentication.

Put the new key first in PORTAL_ENCRYPTION_KEYS and keep the old ones after it, run this, then
drop the old keys: every secret is then readable with the new key alone.
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.mfa_services import mfa_secrets_rotate
from audit.context import audit_context
from delegations.connection.services import cloud_account_secrets_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored cloud AccessKey secret and TOTP key with the first "
        "PORTAL_ENCRYPTION_KEYS key."
    )

    def handle(self, *args: object, **options: object) -> None:
        with audit_context(source="command:rotate_secrets"):
            report = cloud_account_secrets_rotate()
            mfa_report = mfa_secrets_rotate()
        self.stdout.write(
            f"Re-encrypted {report.reencrypted} stored secret"
            f"{'s' if report.reencrypted != 1 else ''} with the first key."
        )
        self.stdout.write(
            f"Re-encrypted {mfa_report.resealed} two-factor secret"
            f"{'s' if mfa_report.resealed != 1 else ''} with the first key."
        )
        unreadable = report.unreadable + mfa_report.unreadable
        if unreadable:
            raise CommandError(
                f"{len(unreadable)} secret(s) could not be decrypted with any configured "
                "key and were left as they are: " + ", ".join(unreadable) + ". Add the "
                "key that encrypted them to PORTAL_ENCRYPTION_KEYS and run this again."
            )
