import hashlib
import re
import uuid
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.time_zones import TIME_ZONE_MAX_LENGTH, is_time_zone

# Alibaba Cloud account UIDs are plain ASCII decimal strings (16 digits in real accounts, 8 in
# the demo). `[0-9]` rather than `\d` so full-width and other Unicode digits never match, and
# `\Z` rather than `$` so a trailing newline is not accepted.
ACCOUNT_UID_RE = re.compile(r"\A[0-9]{1,32}\Z")
ACCOUNT_UID_MAX_LENGTH = 32
# RAM's enterprise (account) alias: lowercase letters, digits and hyphens, 3-32 characters,
# not starting or ending with a hyphen.
ENTERPRISE_ALIAS_RE = re.compile(r"\A[a-z0-9](?:[a-z0-9-]{1,30})[a-z0-9]\Z")
ENTERPRISE_ALIAS_MAX_LENGTH = 32


def validate_account_uid(value: str) -> None:
    if not isinstance(value, str) or not ACCOUNT_UID_RE.match(value):
        raise ValidationError(
            _(
                "An Alibaba Cloud account UID is 1 to 32 digits 0-9 only, for example "
                "1234567890123456: no spaces, signs, letters or ARNs."
            ),
            code="invalid_account_uid",
        )


def validate_enterprise_alias(value: str) -> None:
    if not isinstance(value, str) or not ENTERPRISE_ALIAS_RE.match(value):
        raise ValidationError(
            _(
                "An enterprise alias is 3 to 32 characters: lowercase letters a-z, digits and "
                "hyphens, not starting or ending with a hyphen."
            ),
            code="invalid_enterprise_alias",
        )


def validate_time_zone(value: str) -> None:
    if value and not is_time_zone(value):
        raise ValidationError(
            _("Choose a time zone from the list, for example Asia/Shanghai or Europe/Berlin."),
            code="invalid_time_zone",
        )


# Shared column definitions: the floors above keep the same kinds of column (a cloud account,
# its alias, the person who did something), and each kind is declared once, here.
def account_uid_field(verbose_name: str | None = None) -> models.CharField:
    """An Alibaba Cloud account UID."""
    return models.CharField(
        verbose_name, max_length=ACCOUNT_UID_MAX_LENGTH, validators=[validate_account_uid]
    )


def enterprise_alias_field(verbose_name: str | None = None) -> models.CharField:
    """An account's enterprise alias, when it has one."""
    return models.CharField(
        verbose_name,
        max_length=ENTERPRISE_ALIAS_MAX_LENGTH,
        blank=True,
        validators=[validate_enterprise_alias],
    )


def optional_person_field(
    *, on_delete: Any, related_name: str = "+"
) -> "models.ForeignKey[User | None, User | None]":
    """The person who did something, empty until someone has (or once they are deleted, with
    `on_delete=SET_NULL`)."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=on_delete,
        null=True,
        blank=True,
        related_name=related_name,
    )


def hash_token(raw_token: str) -> str:
    """Invitation tokens are stored only as this digest; the email link carries the raw one."""
    return hashlib.sha256(raw_token.encode("utf-8")).hexdigest()


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: object) -> "User":
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: object) -> "User":
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> "User":
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A person. Signs in with their email; belongs to organisations through memberships."""

    username = None  # type: ignore[assignment]
    email = models.EmailField("email address", unique=True)
    # The person's own choices. Empty language: the browser decides (the language
    # cookie, then Accept-Language); empty time zone: not known yet, times show in UTC until the
    # browser's zone is taken at the next sign-in.
    language = models.CharField(
        _("language"), max_length=16, blank=True, choices=settings.LANGUAGES
    )
    time_zone = models.CharField(
        _("time zone"),
        max_length=TIME_ZONE_MAX_LENGTH,
        blank=True,
        validators=[validate_time_zone],
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    # django-stubs types AbstractUser.objects as Django's username-based UserManager; ours
    # creates people by email.
    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]

    def __str__(self) -> str:
        return self.get_full_name() or self.email


class Organisation(models.Model):
    """A company using the portal: a resource owner (company A) or a partner (company B)."""

    class Kind(models.TextChoices):
        OWNER = "owner", _("Resource owner")
        PARTNER = "partner", _("Partner")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    account_uid = account_uid_field("Alibaba Cloud account UID")
    enterprise_alias = enterprise_alias_field()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            # One account can be registered once as an owner and once as a partner: the
            # delegation trust policy names the account, so two partner organisations sharing
            # one UID would silently share each other's access.
            models.UniqueConstraint(
                fields=["kind", "account_uid"], name="organisation_unique_kind_account_uid"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["owner", "partner"]), name="organisation_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_owner(self) -> bool:
        return self.kind == self.Kind.OWNER

    @property
    def is_partner(self) -> bool:
        return self.kind == self.Kind.PARTNER

    @property
    def role_choices(self) -> list[tuple[str, str]]:
        return [(role.value, str(role.label)) for role in Membership.roles_for_kind(self.kind)]


class Membership(models.Model):
    """A person's role in one organisation. Owner organisations have admins and auditors;
    partner organisations have admins and staff."""

    class Role(models.TextChoices):
        ADMIN = "admin", _("Admin")
        AUDITOR = "auditor", _("Auditor")
        STAFF = "staff", _("Staff")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["organisation__name", "user__email"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organisation"], name="membership_unique_user_organisation"
            ),
            models.CheckConstraint(
                condition=Q(role__in=["admin", "auditor", "staff"]), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}, {self.organisation})"

    @classmethod
    def roles_for_kind(cls, kind: str) -> tuple["Membership.Role", ...]:
        if kind == Organisation.Kind.OWNER:
            return (cls.Role.ADMIN, cls.Role.AUDITOR)
        if kind == Organisation.Kind.PARTNER:
            return (cls.Role.ADMIN, cls.Role.STAFF)
        return ()

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN

    def clean(self) -> None:
        if self.organisation_id and self.role not in Membership.roles_for_kind(
            self.organisation.kind
        ):
            raise ValidationError({"role": _("This role does not exist in this organisation.")})


class Invitation(models.Model):
    """An emailed invitation to join an organisation with a role.

    Only the SHA-256 of the token is stored; the raw token exists in the email link alone, so a
    database reader cannot accept someone else's invitation.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Membership.Role.choices)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = optional_person_field(on_delete=models.SET_NULL, related_name="invitations_sent")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    sent_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = optional_person_field(
        on_delete=models.SET_NULL, related_name="invitations_accepted"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)

    # Not stored: set on the instance the invite and resend services return when its email
    # could not be sent (the invitation stands), so the page can say so.
    email_delivery_failed = False

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one open invitation per address and organisation; resending reuses it.
            models.UniqueConstraint(
                fields=["organisation", "email"],
                condition=Q(accepted_at__isnull=True, cancelled_at__isnull=True),
                name="invitation_one_open_per_email",
            ),
            models.CheckConstraint(
                condition=Q(role__in=["admin", "auditor", "staff"]), name="invitation_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.organisation}"

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.cancelled_at is None

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def is_pending(self) -> bool:
        return self.is_open and not self.is_expired

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.cancelled_at:
            return "cancelled"
        if self.is_expired:
            return "expired"
        return "pending"
