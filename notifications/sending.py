"""Sending deliveries: the worker's side of the notification outbox.

A delivery is claimed with a conditional update (so a duplicate task or a second worker finds
it taken or done), sent (an email, or one chat channel's message), and recorded sent, left
pending for a retry with backoff, or given up visibly. `deliveries_attempt_many` does the
same for a batch of a bulk announcement, sharing the claim, the read, the mail connection and
the "sent" record. A batch renews its claim before each delivery after the first (and before
the first when it opened a mail connection), and sends only what it still holds: a slow mail
server cannot let the claim lapse mid-batch (the dispatcher would hand the rest to another
worker, which would send them a second time). A claim is timed by the database's clock, which
the dispatcher reads too.

Each send (an email, a chat post, and a batch's opening of its mail connection) must end
within its budget, half the claim: a server's timeouts bound each wait on it, not the send, so
one that answers every read just in time would outlast the claim. At the budget the send's
connections are cut (`core.deadline`) and the try counts as failed, to be tried again like
any passing failure.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models.functions import Now
from django.db.models.sql import Query
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy, gettext_noop

from accounts.emails import send_templated_email
from core.crypto import decrypt_secret
from core.deadline import deadline
from core.i18n import Text, stored_message
from notifications import channels as chat
from notifications.events import NotificationEvent
from notifications.models import Channel, Delivery
from notifications.services import Notice, delivery_key, notify, organisation_admins
from notifications.webhook_urls import (
    RESOLVER_UNANSWERED,
    webhook_post,
    webhook_url_well_formed,
)

logger = logging.getLogger(__name__)

# A channel whose deliveries were given up this many times in a row is marked unhealthy and
# its admins are told by email, once.
UNHEALTHY_AFTER_FAILURES = 3


@dataclass(frozen=True)
class Attempt:
    outcome: str  # sent | skipped | retry | failed
    retry_after: float | None = None


def claim_seconds() -> float:
    """How long a worker holds a delivery it is sending; past it, the dispatcher frees it (the
    worker died mid-send). A batch renews it before each of its deliveries, so this bounds one
    send, not a batch."""
    return float(settings.PORTAL_NOTIFICATION_CLAIM_SECONDS)


def send_budget_seconds() -> float:
    """How long one send may take before it is cut off: half the claim, leaving the other half
    to record its outcome while the claim still holds. The settings keep each wait on a server
    (EMAIL_TIMEOUT, PORTAL_WEBHOOK_TIMEOUT_SECONDS) within half the budget, so a send that
    waits one out can still finish."""
    return claim_seconds() / 2


def _timeout() -> float:
    return float(getattr(settings, "PORTAL_WEBHOOK_TIMEOUT_SECONDS", 5.0))


def _send_email(delivery: Delivery, mail_connection: Any = None) -> chat.Verdict:
    # The subject and the mail's own words in the recipient's language, like the notice.
    send_templated_email(
        template_prefix="notifications/email/notice",
        to=delivery.recipient_email,
        context={"notice": delivery.content},
        recipient=delivery.recipient,
        connection=mail_connection,
    )
    return chat.Verdict(True)


# A delivery's last error, stored in English and read in the reader's language (the channel
# page shows it through |message).
CHANNEL_OFF_TEXT = stored_message(gettext_noop("The channel is switched off."))
NO_ANSWER_TEXT = stored_message(gettext_noop("No answer within the timeout."))
DNS_UNANSWERED_TEXT = stored_message(
    gettext_noop("The name server did not answer for the webhook's host.")
)
CUT_OFF_TEXT = stored_message(
    gettext_noop("Cut off after %(seconds)d seconds: the receiving server answered too slowly.")
)


def _send_chat(delivery: Delivery) -> chat.Verdict:
    channel = delivery.channel
    assert channel is not None
    if not channel.is_active:
        return chat.Verdict(False, CHANNEL_OFF_TEXT, permanent=True)
    try:
        url = webhook_url_well_formed(decrypt_secret(channel.url_ciphertext))
    except ValidationError as error:
        return chat.Verdict(False, " ".join(error.messages), permanent=True)
    secret = decrypt_secret(channel.secret_ciphertext) if channel.secret_ciphertext else ""
    outgoing = chat.build_request(
        kind=channel.kind,
        url=url,
        secret=secret,
        notice=delivery.content,
        delivery_key=f"delivery-{delivery.pk}",
    )
    try:
        response = webhook_post(
            url=outgoing.url,
            body=outgoing.body,
            headers=outgoing.headers,
            timeout=(min(3.0, _timeout()), _timeout()),
        )
    except ValidationError as error:
        if error.code == RESOLVER_UNANSWERED:
            return chat.Verdict(False, DNS_UNANSWERED_TEXT)
        return chat.Verdict(False, " ".join(error.messages), permanent=True)
    except requests.Timeout:
        return chat.Verdict(False, NO_ANSWER_TEXT)
    except requests.RequestException as error:
        # The exception's class, not its text: the text may quote the URL, and its key.
        return chat.Verdict(False, type(error).__name__)
    return chat.judge_response(
        kind=channel.kind,
        status=response.status_code,
        text=response.text[:2000],
        retry_after=response.headers.get("Retry-After"),
    )


def delivery_attempt(
    *, delivery_id: int, retry_countdown: Callable[[float | None], float] | None
) -> Attempt:
    """Send one delivery, once: claimed with a conditional update, so a duplicate task or a
    second worker finds it taken or done. `retry_countdown` (None on the last try) says how
    long to wait before the next try, given what the service asked for."""
    attempts = deliveries_attempt_many(delivery_ids=[delivery_id], retry_countdown=retry_countdown)
    return attempts.get(delivery_id, Attempt("skipped"))


def deliveries_attempt_many(
    *, delivery_ids: list[int], retry_countdown: Callable[[float | None], float] | None
) -> dict[int, Attempt]:
    """`delivery_attempt` for many deliveries (a worker fanning out a bulk announcement, such
    as a role's hundred partners made active), sharing what one at a time repeats: the claim
    is one statement, the rows one read, the emails one connection to the mail server and
    their "sent" one statement. Each is still sent at most once and judged on its own; one
    that may be tried again is left pending with `retry_countdown`'s wait, for the caller to
    hand to its own `deliver` task. Ids another worker holds or has sent are left out, also
    those taken over while the batch was sending others (its claim lapsed)."""
    claim = uuid.uuid4().hex
    claimed = _claim(delivery_ids, claim=claim)
    if not claimed:
        return {}
    rows = _claimed_rows(claimed)
    outcomes: dict[int, Attempt] = {}
    emails = sum(1 for d in rows if not d.channel_id)
    sharing = emails > 1
    with _shared_mail_connection(sharing) as mail_connection:
        for index, delivery in enumerate(rows):
            # The claim was just taken for the first (unless opening the mail connection took
            # up to a budget since); every later one renews it for the whole batch (those sent
            # but not yet recorded too) and learns what it still holds.
            if (index or sharing) and delivery.pk not in _claim_renewed(claim):
                continue
            outcomes[delivery.pk] = _attempt(
                delivery,
                claim=claim,
                retry_countdown=retry_countdown,
                mail_connection=mail_connection,
            )
    sent = {pk for pk, attempt in outcomes.items() if attempt.outcome == "sent"}
    _held(claim).filter(pk__in=sent).update(
        status=Delivery.Status.SENT, sent_at=timezone.now(), claimed_until=None, last_error=""
    )
    # A channel that took a message is healthy again.
    answered = {d.channel_id for d in rows if d.pk in sent and d.channel_id}
    if answered:
        Channel.objects.filter(pk__in=answered).update(consecutive_failures=0, unhealthy_since=None)
    return outcomes


@contextmanager
def _shared_mail_connection(wanted: bool) -> Iterator[Any]:
    """One open connection to the mail server for a batch's emails, or None (each email then
    opens its own, and fails and is retried on its own) when not wanted (a single email needs
    no sharing) or the server cannot be reached now."""
    if not wanted:
        yield None
        return
    connection_to_mail = mail.get_connection()
    try:
        with deadline(send_budget_seconds()):
            connection_to_mail.open()
    except Exception as error:  # SMTP refused, DNS, TLS, cut off: judged per email instead
        logger.warning("Mail server not reached for a batch: %s", type(error).__name__)
        yield None
        return
    try:
        yield connection_to_mail
    finally:
        connection_to_mail.close()


def _claim_expiry() -> tuple[str, list[Any]]:
    """The end of a claim taken or renewed now, as SQL and its parameters: by the database's
    clock, the one every worker and the dispatcher share (a worker whose clock runs behind
    would set a claim the dispatcher already sees lapsed), as the delegation worker's leases."""
    query = Query(Delivery)
    expiry = (Now() + dt.timedelta(seconds=claim_seconds())).resolve_expression(query)
    sql, params = query.get_compiler(connection=connection).compile(expiry)
    return sql, list(params)


def _claim(delivery_ids: list[int], *, claim: str) -> list[int]:
    """Take the pending ones of these deliveries for this worker under `claim` (a conditional
    update with RETURNING, so each goes to one claimer even when two workers race for it);
    their ids."""
    if not delivery_ids:
        return []  # `IN ()` is no SQL PostgreSQL reads
    table = connection.ops.quote_name(Delivery._meta.db_table)
    placeholders = ", ".join(["%s"] * len(delivery_ids))
    expiry, expiry_params = _claim_expiry()
    # The table's own name, placeholders and the ORM's SQL for "now + claim"; every value is a
    # parameter.
    sql = (
        f"UPDATE {table} SET status = %s, claimed_until = {expiry}, "  # noqa: S608
        "claimed_by = %s, attempts = attempts + 1 "
        f"WHERE status = %s AND id IN ({placeholders}) RETURNING id"
    )
    params = [
        Delivery.Status.SENDING.value,
        *expiry_params,
        claim,
        Delivery.Status.PENDING.value,
        *delivery_ids,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return sorted(row[0] for row in cursor.fetchall())


def _claim_renewed(claim: str) -> set[int]:
    """Extend `claim` on every delivery it still holds (one statement); their ids. One the
    dispatcher freed after the claim lapsed, and another worker may have taken, is not among
    them."""
    table = connection.ops.quote_name(Delivery._meta.db_table)
    expiry, expiry_params = _claim_expiry()
    # The table's own name and the ORM's SQL for "now + claim"; every value is a parameter.
    sql = (
        f"UPDATE {table} SET claimed_until = {expiry} "  # noqa: S608
        "WHERE claimed_by = %s AND status = %s RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*expiry_params, claim, Delivery.Status.SENDING.value])
        return {row[0] for row in cursor.fetchall()}


def _held(claim: str) -> Any:
    """The deliveries `claim` still holds."""
    return Delivery.objects.filter(claimed_by=claim, status=Delivery.Status.SENDING)


def _claimed_rows(delivery_ids: list[int]) -> list[Delivery]:
    return list(
        Delivery.objects.filter(pk__in=delivery_ids)
        .select_related("channel", "organisation", "recipient")
        .order_by("id")
    )


def _attempt(
    delivery: Delivery,
    *,
    claim: str,
    retry_countdown: Callable[[float | None], float] | None,
    mail_connection: Any = None,
) -> Attempt:
    """Send a claimed delivery within its budget and record a failure (a success is the
    caller's to record, with the others of its batch)."""
    budget = send_budget_seconds()
    with deadline(budget) as send_deadline:
        try:
            if delivery.channel_id:
                verdict = _send_chat(delivery)
            else:
                verdict = _send_email(delivery, mail_connection)
        except Exception as error:  # SMTP, templates, a key that no longer decrypts
            logger.warning("Delivery %s failed: %s", delivery.pk, type(error).__name__)
            verdict = chat.Verdict(False, type(error).__name__)
    if send_deadline.expired and not verdict.ok:
        # The error only says how the cut showed (a disconnection, a timeout). A shared mail
        # connection it cut is dropped: the batch's next email opens one of its own.
        logger.warning("Delivery %s cut off after %g s", delivery.pk, budget)
        verdict = chat.Verdict(False, CUT_OFF_TEXT % {"seconds": budget})
        if mail_connection is not None:
            # Dead already: dropping it must not stop the batch.
            with suppress(Exception):
                mail_connection.close()
    if verdict.ok:
        return Attempt("sent")
    if retry_countdown is None or verdict.permanent:
        _record_given_up(delivery, verdict.error, claim=claim)
        return Attempt("failed")
    countdown = retry_countdown(verdict.retry_after)
    later = timezone.now() + dt.timedelta(seconds=countdown)
    _held(claim).filter(pk=delivery.pk).update(
        status=Delivery.Status.PENDING,
        last_error=verdict.error[:500],
        available_at=later,
        # The retry is already scheduled with the broker; the dispatcher steps in only if
        # that message is lost.
        dispatched_at=later,
        claimed_until=None,
    )
    return Attempt("retry", countdown)


@transaction.atomic
def _record_given_up(delivery: Delivery, error: str, *, claim: str) -> None:
    # Only while the claim holds it: after a lapse it is another worker's to judge.
    given_up = (
        _held(claim)
        .filter(pk=delivery.pk)
        .update(status=Delivery.Status.FAILED, last_error=error[:500], claimed_until=None)
    )
    if not given_up or not delivery.channel_id:
        return
    channel = (
        Channel.objects.select_for_update()
        .select_related("organisation")
        .get(pk=delivery.channel_id)
    )
    channel.consecutive_failures += 1
    newly_unhealthy = (
        channel.unhealthy_since is None and channel.consecutive_failures >= UNHEALTHY_AFTER_FAILURES
    )
    unhealthy_since = timezone.now()
    if newly_unhealthy:
        channel.unhealthy_since = unhealthy_since
    channel.save(update_fields=["consecutive_failures", "unhealthy_since", "updated_at"])
    if newly_unhealthy:
        # By email only, so a failing channel can never notify about itself in a loop.
        notify(
            key=delivery_key("channel.unhealthy", str(channel.pk), unhealthy_since.isoformat()),
            notice=Notice(
                event=NotificationEvent.CHANNEL_UNHEALTHY,
                title=Text(
                    gettext_lazy("The chat channel %(name)s keeps failing"), name=channel.name
                ),
                summary=Text(
                    gettext_lazy(
                        "The last %(count)d messages to this channel could not be delivered. "
                        "Check its webhook URL and signing secret, then send a test message."
                    ),
                    count=channel.consecutive_failures,
                ),
                link_path=reverse("notifications:channel", args=[channel.pk]),
                facts=((gettext_lazy("Last error"), error[:200]),),
            ),
            organisation=channel.organisation,
            people=organisation_admins(channel.organisation),
            to_channels=False,
        )
