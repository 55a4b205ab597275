"""Encrypt the TOTP keys and recovery-code seeds allauth stored in plaintext before the portal's
MFA adapter encrypted them (`accounts.mfa_secrets`). Values already sealed are left as they are,
so running it twice, or after new enrolments, changes nothing. It needs PORTAL_ENCRYPTION_KEYS
only when there is something to encrypt, and then fails closed without it."""

from django.db import migrations

from accounts import mfa_secrets


def _rewrite(apps, change) -> None:
    Authenticator = apps.get_model("mfa", "Authenticator")
    for authenticator in Authenticator.objects.filter(type__in=list(mfa_secrets.SECRET_FIELDS)):
        data = change(authenticator.type, authenticator.data)
        if data != authenticator.data:
            authenticator.data = data
            authenticator.save(update_fields=["data"])


def encrypt_plaintext_secrets(apps, schema_editor) -> None:
    _rewrite(apps, mfa_secrets.sealed_data)


def decrypt_secrets(apps, schema_editor) -> None:
    _rewrite(apps, mfa_secrets.unsealed_data)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_organisations_memberships_invitations"),
        ("mfa", "0003_authenticator_type_uniq"),
    ]

    operations = [migrations.RunPython(encrypt_plaintext_secrets, decrypt_secrets)]
