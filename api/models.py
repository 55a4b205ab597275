"""Tokens for the REST API: personal access tokens, service accounts (a token owned by an
organisation rather than a person) and the pending codes of the device flow.

A token reads `pap_<prefix>_<secret>`. Only the prefix (to find the row and to name the token
in the audit log) and the SHA-256 of the whole token are stored; the raw token is shown once.
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.db import exactly_one_set


class Scope(models.TextChoices):
    READ = "read", _("Read delegations, catalogue and my access")
    REQUEST = "request", _("Request and withdraw access")
    CREDENTIALS = "credentials", _("Get temporary cloud credentials")
    DECIDE = "decide", _("Approve, reject, offer and revoke")
    AUDIT = "audit", _("Read the audit log and the access report")


# What `pap login` asks for: enough for a person's everyday terminal work, never decisions.
DEVICE_FLOW_SCOPES = (Scope.READ, Scope.REQUEST, Scope.CREDENTIALS)
# A service account reads (delegations, catalogue, audit) and, for a partner's pipelines, files
# and withdraws requests (the lifecycle takes it as a `ServiceActor`); it never decides and never
# takes credentials (those are a named person's).
SERVICE_ACCOUNT_SCOPES = (Scope.READ, Scope.REQUEST, Scope.AUDIT)


class ServiceAccount(models.Model):
    """A person-less identity of an organisation for automation (CI pipelines). Its tokens
    carry its organisation; the audit log names it as "service account <name>"."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="service_accounts"
    )
    name = models.CharField(max_length=80)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    disabled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "name"], name="service_account_unique_name"
            ),
        ]

    def __str__(self) -> str:
        return f"service account {self.name}"


class ApiToken(models.Model):
    """A bearer token: a person's (optionally limited to one organisation) or a service
    account's (always its organisation)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    name = models.CharField(max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="api_tokens",
    )
    service_account = models.ForeignKey(
        ServiceAccount, on_delete=models.CASCADE, null=True, blank=True, related_name="tokens"
    )
    organisation = models.ForeignKey(
        "accounts.Organisation",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_with_mfa = models.BooleanField(default=False)
    created_via = models.CharField(max_length=16, default="web")
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.CharField(max_length=45, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            exactly_one_set("user", "service_account", name="api_token_one_owner"),
        ]

    def __str__(self) -> str:
        return f"API token {self.name} (pap_{self.prefix}_…)"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "active"

    @property
    def status_label(self) -> str:
        """`status` in the reader's language."""
        return str(TOKEN_STATUS_LABELS[self.status])


TOKEN_STATUS_LABELS = {
    "active": pgettext_lazy("API token status", "active"),
    "expired": pgettext_lazy("API token status", "expired"),
    "revoked": pgettext_lazy("API token status", "revoked"),
}


class DeviceAuthorization(models.Model):
    """A pending `pap login` (RFC 8628): the CLI holds the device code, the person types the
    user code in the browser. Both are stored hashed; the row is single use and short-lived."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    device_code_hash = models.CharField(max_length=64, unique=True, editable=False)
    user_code_hash = models.CharField(max_length=64, unique=True, editable=False)
    client_name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_with_mfa = models.BooleanField(default=False)
    denied_at = models.DateTimeField(null=True, blank=True)
    consumed_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Device authorization {self.client_name or ''}".strip()


class OrganisationApiPolicy(models.Model):
    """What an organisation allows through the API. Decisions (approve, reject, offer, revoke)
    are off until an admin turns them on."""

    organisation = models.OneToOneField(
        "accounts.Organisation", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    allow_decisions = models.BooleanField(default=False)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    changed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"API policy of {self.organisation_id}"
