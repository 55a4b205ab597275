"""The append-only, hash-chained audit log.

Rows are written only by `audit.services.audit_record`, inside the transaction of the change
they describe. Nothing ever updates or deletes them: the ORM refuses here, and database
triggers (migration 0002) refuse below the ORM. Actor and organisation references carry no
foreign-key constraint and are never nulled, so a row (and its hash) survives the deletion
of the user or organisation it names; the copied labels keep it readable.
"""

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from audit.chain import GENESIS_HASH, HASH_VERSION, event_payload


class AuditImmutableError(Exception):
    """Raised when code tries to change or delete an audit row through the ORM."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise AuditImmutableError("Audit events are append-only; they cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditImmutableError("Audit events are append-only; they cannot be deleted.")

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> int:
        raise AuditImmutableError("Audit events are append-only; they cannot be updated.")

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list["AuditEvent"]:
        raise AuditImmutableError("Audit events are written one by one by audit_record().")

    def visible_to(self, organisation_id: uuid.UUID | str) -> "AuditEventQuerySet":
        """Events whose scope includes the organisation (primary or related)."""
        return self.filter(scopes__organisation_id=organisation_id)


def _loose_reference(to: str) -> "models.ForeignKey[Any, Any]":
    """An event's optional reference to a user or organisation: no database constraint and
    never nulled, so the row (and its hash) outlives what it names."""
    return models.ForeignKey(
        to,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        editable=False,
    )


class AuditEvent(models.Model):
    class Outcome(models.TextChoices):
        SUCCESS = "success", _("Succeeded")
        FAILURE = "failure", _("Failed")
        DENIED = "denied", _("Denied")

    # The chain position doubles as the primary key: gap-free, monotonic, and what keyset
    # pagination and the verifier walk.
    sequence = models.PositiveBigIntegerField(primary_key=True, editable=False)
    hash_version = models.PositiveSmallIntegerField(default=HASH_VERSION, editable=False)
    occurred_at = models.DateTimeField(editable=False)
    action = models.CharField(max_length=100, editable=False)
    outcome = models.CharField(
        max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS, editable=False
    )

    actor = _loose_reference(settings.AUTH_USER_MODEL)
    actor_label = models.CharField(max_length=255, blank=True, editable=False)
    actor_organisation = _loose_reference("accounts.Organisation")
    actor_organisation_label = models.CharField(max_length=200, blank=True, editable=False)

    # The primary organisation; every organisation that may see the event (this one included)
    # has an AuditEventScope row.
    organisation = _loose_reference("accounts.Organisation")

    target_type = models.CharField(max_length=100, blank=True, editable=False)
    target_id = models.CharField(max_length=64, blank=True, editable=False)
    target_label = models.CharField(max_length=255, blank=True, editable=False)
    before = models.JSONField(null=True, blank=True, editable=False)
    after = models.JSONField(null=True, blank=True, editable=False)
    metadata = models.JSONField(default=dict, blank=True, editable=False)

    # Where the change came from: "web", "task:<name>", "command:<name>" or "system".
    source = models.CharField(max_length=100, blank=True, editable=False)
    source_ip = models.CharField(max_length=45, blank=True, editable=False)
    request_id = models.CharField(max_length=64, blank=True, editable=False)

    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-sequence"]
        indexes = [
            models.Index(fields=["organisation", "-sequence"], name="audit_event_org_seq"),
            models.Index(fields=["action", "-sequence"], name="audit_event_action_seq"),
            models.Index(
                fields=["target_type", "target_id", "-sequence"], name="audit_event_target_seq"
            ),
            models.Index(fields=["actor", "-sequence"], name="audit_event_actor_seq"),
            models.Index(fields=["occurred_at"], name="audit_event_occurred_at"),
            models.Index(fields=["request_id"], name="audit_event_request_id"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditImmutableError("Audit events are append-only; they cannot be updated.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditImmutableError("Audit events are append-only; they cannot be deleted.")

    def chain_payload(self, scope_organisation_ids: list[object]) -> dict[str, Any]:
        """The canonical content the row's hash covers (its scopes are passed in, so a
        verifier walking millions of rows can fetch them in batches)."""
        return event_payload(
            hash_version=self.hash_version,
            sequence=self.sequence,
            occurred_at=self.occurred_at,
            action=self.action,
            outcome=self.outcome,
            actor_id=self.actor_id,
            actor_label=self.actor_label,
            actor_organisation_id=self.actor_organisation_id,
            actor_organisation_label=self.actor_organisation_label,
            organisation_id=self.organisation_id,
            scope_organisation_ids=scope_organisation_ids,
            target_type=self.target_type,
            target_id=self.target_id,
            target_label=self.target_label,
            before=self.before,
            after=self.after,
            metadata=self.metadata,
            source=self.source,
            source_ip=self.source_ip,
            request_id=self.request_id,
        )


class AuditEventScopeQuerySet(models.QuerySet["AuditEventScope"]):
    def update(self, **kwargs: Any) -> int:
        raise AuditImmutableError("Audit scopes are append-only; they cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditImmutableError("Audit scopes are append-only; they cannot be deleted.")


class AuditEventScope(models.Model):
    """One organisation allowed to see one event, and that event's link in the
    organisation's own chain.

    A delegation's events concern the owner and the partner; one row per organisation keeps
    "events visible to X, newest first" a single range scan on (organisation, event).
    The rows are covered by their event's hash. `org_hash` = SHA-256(org_prev_hash ‖ event
    hash), with `org_prev_hash` the organisation's previous `org_hash` (zeros for its first
    event): an export of one organisation's events is then a contiguous chain that verifies
    offline (`audit.verify_export`), where the global chain has gaps for other tenants.
    """

    event = models.ForeignKey(AuditEvent, on_delete=models.PROTECT, related_name="scopes")
    organisation = models.ForeignKey(
        "accounts.Organisation",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    org_prev_hash = models.CharField(max_length=64, editable=False)
    org_hash = models.CharField(max_length=64, editable=False)

    objects = AuditEventScopeQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "event"], name="audit_scope_unique_organisation_event"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.event_id} visible to {self.organisation_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditImmutableError("Audit scopes are append-only; they cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditImmutableError("Audit scopes are append-only; they cannot be deleted.")


class AuditChainHead(models.Model):
    """The one row every writer locks: the last sequence and hash of the chain.

    `audit_record` takes it `FOR UPDATE` (PostgreSQL) or inside an IMMEDIATE transaction
    (SQLite), so writers queue here and the chain never forks.
    """

    SINGLETON_ID = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID)
    sequence = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="audit_chain_head_singleton"),
        ]

    def __str__(self) -> str:
        return f"Audit chain head at #{self.sequence}"


class AuditVerification(models.Model):
    """One run of the chain verifier in the background, asked for from the Verify page.

    There is one chain for every tenant, so at most one run is queued or running at a time
    (the partial unique constraint on `chain`, not only a check in the service). The worker
    running it claims it with a fresh `run_token` and writes progress, and `heartbeat_at`,
    only while the token is still its own: a run that stops beating for
    `audit.verification.STALE_AFTER` is shown as stale and may be replaced, and a late write
    from the lost worker then changes nothing.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        INTACT = "intact", _("Intact")
        BROKEN = "broken", _("Broken")
        FAILED = "failed", _("Failed")

    IN_FLIGHT = (Status.QUEUED, Status.RUNNING)
    CHAIN = "audit"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Always "audit": the column the single-flight constraint is unique on.
    chain = models.CharField(max_length=16, default=CHAIN, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=255, blank=True)
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField()
    run_token = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    events_checked = models.PositiveBigIntegerField(default=0)
    events_total = models.PositiveBigIntegerField(default=0)
    head_sequence = models.PositiveBigIntegerField(null=True, blank=True)
    head_hash = models.CharField(max_length=64, blank=True)
    checkpoints_checked = models.PositiveIntegerField(default=0)
    first_bad_sequence = models.PositiveBigIntegerField(null=True, blank=True)
    problem = models.CharField(max_length=32, blank=True)
    detail = models.TextField(blank=True)
    # False for an outcome stored without its audit event: the log refused the append (see
    # `audit.verification._conclude`).
    result_audited = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["-created_at"], name="audit_verification_created")]
        constraints = [
            models.UniqueConstraint(
                fields=["chain"],
                condition=models.Q(status__in=["queued", "running"]),
                name="audit_verification_single_flight",
            ),
        ]

    def __str__(self) -> str:
        return f"Audit chain verification {self.created_at:%Y-%m-%d %H:%M:%S} ({self.status})"

    @property
    def in_flight(self) -> bool:
        return self.status in self.IN_FLIGHT

    @property
    def percent(self) -> int:
        if not self.events_total:
            return 100 if not self.in_flight else 0
        return min(100, self.events_checked * 100 // self.events_total)
