"""`manage.py rotate_secrets`: re-encrypt every stored cloud secret with the newest key.

Put the new key first in PORTAL_ENCRYPTION_KEYS and keep the old ones after it, run this, then
drop the old keys: every secret is then readable with the new key alone.
"""

from django.core.management.base import BaseCommand, CommandError

from audit.context import audit_context
from delegations.services.cloud_accounts import cloud_account_secrets_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored cloud AccessKey secret with the first PORTAL_ENCRYPTION_KEYS key."
    )

    def handle(self, *args: object, **options: object) -> None:
        with audit_context(source="command:rotate_secrets"):
            report = cloud_account_secrets_rotate()
        self.stdout.write(
            f"Re-encrypted {report.reencrypted} stored secret"
            f"{'s' if report.reencrypted != 1 else ''} with the first key."
        )
        if report.unreadable:
            raise CommandError(
                f"{len(report.unreadable)} secret(s) could not be decrypted with any configured "
                "key and were left as they are: " + ", ".join(report.unreadable) + ". Add the "
                "key that encrypted them to PORTAL_ENCRYPTION_KEYS and run this again."
            )
