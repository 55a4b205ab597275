"""What partner sessions did in an owner's account, as ActionTrail reported it.

`ActivityEvent` is one ActionTrail event, stored once per (account, eventId) and joined at
ingestion to the delegation whose role it used and the portal person behind the session.
It is indexed by (account, time) and (delegation, time): every page reads one delegation's
newest rows through an index, so its cost does not grow with the table.
`ActivityCursor` is one owner account's ingestion state in one region (ActionTrail is
regional): how far it has read, and why it stopped when it did.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from delegations.models import CloudAccount, Delegation


class ActivityCursor(models.Model):
    cloud_account = models.ForeignKey(
        CloudAccount, on_delete=models.CASCADE, related_name="activity_cursors"
    )
    # The ActionTrail region this cursor reads (each region keeps its own trail).
    region = models.CharField(max_length=32)
    # Every event up to this moment (less ActionTrail's delay, covered by the overlap) is in.
    ingested_until = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    events_stored = models.PositiveBigIntegerField(default=0)
    last_error_code = models.CharField(max_length=128, blank=True)
    last_error_message = models.TextField(max_length=2000, blank=True)
    # Set when the key lacks permission: ingestion waits for another key (fingerprint) rather
    # than asking again every run.
    blocked_key_fingerprint = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["cloud_account", "region"], name="activity_cursor_once_per_region"
            )
        ]

    def __str__(self) -> str:
        return f"activity cursor of {self.cloud_account_id} in {self.region}"


def _checked_at_ingestion(to: type[models.Model] | str) -> models.ForeignKey[Any, Any]:
    """An event's optional link to a portal row that ingestion checks itself (see
    `ActivityEvent`): no index and no constraint, emptied when the row goes."""
    return models.ForeignKey(
        to,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )


class ActivityEvent(models.Model):
    class Outcome(models.TextChoices):
        ALLOWED = "allowed", _("allowed")
        DENIED = "denied", _("denied")
        FAILED = "failed", _("failed")

    class Via(models.TextChoices):
        ISSUED = "issued", _("credentials issued by the portal")
        CONSOLE = "console", _("console switch by a linked RAM user")
        UNKNOWN = "unknown", _("a session the portal did not issue")
        OTHER = "other", _("not a partner session")

    # Ingestion writes a million rows a run, so the table keeps only the indexes its reads use:
    # the unique (account, event id) and the composite indexes below lead with the account or
    # the delegation, which makes single-column indexes on those two redundant, and no page
    # reads by person id (a person is filtered by `person_label`), so it has no index either:
    # deleting a user, which the portal never does, would read the table to unset it. The
    # account, delegation and person are checked when the row is made (ingestion reads them
    # in the same transaction, under the account's cursor lock) rather than by a constraint
    # trigger per row: the account's trigger locked the account's row once per inserted event,
    # a fifth of the database's work per row. Deleting any of the three still reaches the
    # rows, through Django's `on_delete`.
    cloud_account = models.ForeignKey(
        CloudAccount,
        on_delete=models.CASCADE,
        related_name="activity_events",
        db_index=False,
        db_constraint=False,
    )
    event_id = models.CharField(max_length=128)
    event_time = models.DateTimeField()
    delegation = _checked_at_ingestion(Delegation)
    person = _checked_at_ingestion(settings.AUTH_USER_MODEL)
    # What the page shows for the person: their email, or the RAM user / session name.
    person_label = models.CharField(max_length=255, blank=True)
    via = models.CharField(max_length=16, choices=Via.choices, default=Via.OTHER)
    identity_type = models.CharField(max_length=32, blank=True)
    user_name = models.CharField(max_length=255, blank=True)
    role_name = models.CharField(max_length=64, blank=True)
    session_name = models.CharField(max_length=128, blank=True)
    source_identity = models.CharField(max_length=128, blank=True)
    access_key_id = models.CharField(max_length=128, blank=True)
    partner_account_uid = models.CharField(max_length=32, blank=True)
    service_name = models.CharField(max_length=64, blank=True)
    event_name = models.CharField(max_length=128, blank=True)
    event_rw = models.CharField(max_length=8, blank=True)
    event_type = models.CharField(max_length=32, blank=True)
    resource_name = models.CharField(max_length=512, blank=True)
    resource_type = models.CharField(max_length=128, blank=True)
    region = models.CharField(max_length=32, blank=True)
    source_ip = models.CharField(max_length=64, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.ALLOWED)
    error_code = models.CharField(max_length=128, blank=True)
    # Alerts this event raised (activity.alerts.Alert), e.g. ["denied", "after_end"].
    alerts = models.JSONField(default=list, blank=True)
    # Fields that were missing, malformed or cut short; the row keeps what was valid.
    problems = models.JSONField(default=list, blank=True)
    # The event as JSON text, as ingestion read it (activity.events). Text, not jsonb: the
    # portal keeps it for the record and never queries inside it, and parsing a kilobyte into
    # jsonb was about ten microseconds of the database's work per stored row, a quarter of it.
    raw = models.TextField(blank=True, default="{}")
    # What the text filter searches, lower-cased once at ingestion: the action, resource,
    # person, source IP, request id and error code. It has no index (a trigram index cost
    # ingestion more than everything else the database does per row): the filter reads a
    # bounded number of the newest calls in the chosen time range (activity.selectors).
    search_text = models.TextField(blank=True, default="")
    ingested_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["cloud_account", "event_id"], name="activity_event_once_per_account"
            )
        ]
        indexes = [
            models.Index(fields=["cloud_account", "-event_time"], name="activity_account_time"),
            models.Index(fields=["delegation", "-event_time"], name="activity_delegation_time"),
            # One per exact filter of the Activity page: a filtered page reads its newest rows
            # through an index instead of walking the delegation's rows until enough match.
            models.Index(
                fields=["delegation", "person_label", "-event_time"], name="activity_person_time"
            ),
            models.Index(
                fields=["delegation", "event_name", "-event_time"], name="activity_action_time"
            ),
            models.Index(fields=["delegation", "event_rw", "-event_time"], name="activity_rw_time"),
            models.Index(
                fields=["delegation", "outcome", "-event_time"], name="activity_outcome_time"
            ),
        ]
        ordering = ["-event_time", "-id"]

    def __str__(self) -> str:
        return f"{self.event_name} at {self.event_time:%Y-%m-%d %H:%M:%S}"

    @property
    def is_write(self) -> bool:
        return self.event_rw == "Write"

    @property
    def raw_event(self) -> dict[str, Any]:
        """The stored event, read back as a dictionary."""
        return json.loads(self.raw)

    @property
    def action(self) -> str:
        """The RAM action this call needed, e.g. `ecs:StopInstance`."""
        return f"{self.service_name.lower()}:{self.event_name}"


class ActivityDaily(models.Model):
    """Calls per delegation, day, person, action and outcome, counted when their events are
    stored (in the same transaction, new events only). The chart, the filter lists and the
    right-sizing read these few rows instead of every event, so they cost the same at 1k
    and at 1M events."""

    delegation = models.ForeignKey(Delegation, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    person_label = models.CharField(max_length=255, blank=True)
    service_name = models.CharField(max_length=64, blank=True)
    event_name = models.CharField(max_length=128, blank=True)
    event_rw = models.CharField(max_length=8, blank=True)
    outcome = models.CharField(max_length=8, choices=ActivityEvent.Outcome.choices)
    calls = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "delegation",
                    "day",
                    "person_label",
                    "service_name",
                    "event_name",
                    "event_rw",
                    "outcome",
                ],
                name="activity_daily_once",
            )
        ]
        indexes = [models.Index(fields=["delegation", "-day"], name="activity_daily_time")]

    def __str__(self) -> str:
        return f"{self.day} {self.person_label} {self.event_name}: {self.calls}"
