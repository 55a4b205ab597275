"""Chat channels per organisation, each person's email preferences, and the deliveries (the
notification outbox: one row per event x recipient x channel, written with the event)."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import optional_person_field


class Channel(models.Model):
    """A chat destination of one organisation. The webhook URL (Slack's and WeCom's carry
    their key in it) and the signing secret are stored only as ciphertext
    (`core.crypto`); pages show `url_hint`."""

    class Kind(models.TextChoices):
        DINGTALK = "dingtalk", _("DingTalk custom robot")
        LARK = "lark", _("Lark / Feishu custom bot")
        WECOM = "wecom", _("WeCom group robot")
        SLACK = "slack", _("Slack incoming webhook")
        WEBHOOK = "webhook", _("Generic webhook (signed JSON)")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="notification_channels"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=80)
    url_ciphertext = models.TextField(editable=False)
    # Scheme and host only: enough to recognise the channel, nothing that posts to it.
    url_hint = models.CharField(max_length=300, editable=False)
    secret_ciphertext = models.TextField(blank=True, editable=False)
    events = models.JSONField(default=list, blank=True)
    # The language its messages are written in: a channel's readers are a team,
    # so the admin who adds it chooses for them.
    language = models.CharField(
        _("language"), max_length=16, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )
    is_active = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    unhealthy_since = models.DateTimeField(null=True, blank=True)
    created_by = optional_person_field(on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["dingtalk", "lark", "wecom", "slack", "webhook"]),
                name="channel_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_ciphertext)

    @property
    def is_healthy(self) -> bool:
        return self.unhealthy_since is None


class Preference(models.Model):
    """What one person chose not to receive by email (security notices always arrive)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    email_muted = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Notification preferences of {self.user}"


class Delivery(models.Model):
    """One message to send: to one person by email, or to one channel. Written in the
    transaction of the event it announces; sent by the worker after the commit."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    # event x recipient x channel: a second notify() for the same thing writes nothing.
    idempotency_key = models.CharField(max_length=255, unique=True)
    event = models.CharField(max_length=64)
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    channel = models.ForeignKey(
        Channel, on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries"
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    recipient_email = models.EmailField(blank=True)
    # The notice (title, facts, link, organisation name): rendered when sent.
    content = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    available_at = models.DateTimeField(default=timezone.now)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    # The claim that took it last (one per batch a worker claims): only that claim renews,
    # sends and records it, so a batch whose claim lapsed cannot send what another took.
    claimed_by = models.CharField(max_length=64, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["status", "available_at"], name="delivery_status_available"),
            models.Index(fields=["channel", "created_at"], name="delivery_channel_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(channel__isnull=False) | Q(recipient__isnull=False),
                name="delivery_has_a_destination",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "sending", "sent", "failed"]),
                name="delivery_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.channel or self.recipient_email}"


class NoticeMark(models.Model):
    """A notice that must go out once per subject (a reminder, an expiry warning): the row is
    the proof it went, so a scheduler running twice sends nothing twice."""

    key = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return self.key


class Escalation(models.Model):
    """Who else hears when a request waits too long: a member of the owner organisation the
    admins name; daily reminders reach them as well as the approvers."""

    organisation = models.OneToOneField(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="notification_escalation"
    )
    contact = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Escalation of {self.organisation}"
