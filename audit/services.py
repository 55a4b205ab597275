"""Writing the audit log: `audit_record` is the only way in.

Call it inside the same `transaction.atomic()` block as the change it describes. It fails
closed: any problem (a secret-looking key, a value that is not JSON, a database error) marks
the caller's transaction for rollback and raises, so a change never commits without its event.
"""

import datetime as dt
import decimal
import enum
import functools
import inspect
import ipaddress
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, models, transaction
from django.db.models import Subquery
from django.utils import timezone

from audit import one_statement
from audit.actions import AuditAction
from audit.chain import GENESIS_HASH, HASH_VERSION, link_hash, org_link_hash
from audit.context import current_origin
from audit.models import AuditChainHead, AuditEvent, AuditEventScope

if TYPE_CHECKING:
    from accounts.models import Organisation, User


class AuditError(Exception):
    """The event could not be recorded; the caller's transaction is marked for rollback."""


# What a page or an API answer refused because the ledger could not be written tells the
# client to wait before trying again (Retry-After).
AUDIT_UNAVAILABLE_RETRY_AFTER_SECONDS = 30


class AuditNotInTransactionError(AuditError):
    pass


class AuditSecretError(AuditError, ValueError):
    pass


class AuditValueError(AuditError, ValueError):
    pass


class AuditUnknownActionError(AuditValueError):
    """The action is not an `AuditAction`: every event type is named in `audit.actions`."""


class AuditChainError(AuditError):
    pass


class AuditWriteError(AuditError):
    """The database refused the event (full disk, lost connection, a broken constraint).

    Raised in place of the database's own error, so that the pages can tell "the ledger could
    not record this, so nothing changed" apart from any other failure."""


_MAX_DEPTH = 20

# Key names that say "this is a secret". Long markers match anywhere in the key once case and
# separators are dropped (`AccessKeySecret`, `security_token`, `x-acs-signature`, `api-key`,
# `csrfmiddlewaretoken`); short ones must be a whole word (`otp`, not "footprint"). So
# `access_key_id`, `session_name` and `expiration` pass.
_SECRET_MARKERS = (
    "secret",
    "password",
    "passwd",
    "passphrase",
    "token",
    "signature",
    "credential",
    "authorization",
    "cookie",
    "apikey",
    "privatekey",
    "sessionkey",
    "recoverycode",
)
_SECRET_WORDS = frozenset({"pwd", "pass", "otp", "totp", "hotp", "pin"})
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


# Pure in the key, and the keys of audit events are a small vocabulary: a batch of a hundred
# events asks about the same few dozen keys thousands of times.
@functools.lru_cache(maxsize=4096)
def looks_secret(key: str) -> bool:
    squashed = re.sub(r"[^a-z0-9]", "", key.lower())
    if any(marker in squashed for marker in _SECRET_MARKERS):
        return True
    return any(word.lower() in _SECRET_WORDS for word in _WORD_SPLIT.split(key) if word)


def _clean_text(value: str) -> str:
    # PostgreSQL text and jsonb reject NUL and lone surrogates; replace them here so the
    # stored value is exactly the hashed one.
    return value.encode("utf-8", errors="replace").decode("utf-8").replace("\x00", "\ufffd")


def _label(value: object, max_length: int) -> str:
    return _clean_text("" if value is None else str(value))[:max_length]


def to_audit_json(value: Any, *, path: str = "$", depth: int = 0) -> Any:
    """A JSON value that survives storage unchanged (so its hash still verifies after a round
    trip through SQLite or PostgreSQL jsonb), refusing secret-looking keys."""
    if depth > _MAX_DEPTH:
        raise AuditValueError(f"{path}: nested too deeply for an audit event.")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, enum.Enum):
        return to_audit_json(value.value, path=path, depth=depth + 1)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise AuditValueError(f"{path}: NaN and infinity are not JSON.")
        # jsonb prints integral floats as integers; store them as integers from the start.
        return int(value) if value.is_integer() else value
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        if timezone.is_naive(value):
            raise AuditValueError(f"{path}: datetimes in audit events must be timezone-aware.")
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return to_audit_json(value.total_seconds(), path=path, depth=depth + 1)
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise AuditValueError(f"{path}: keys must be strings, not {key!r}.")
            if looks_secret(key):
                raise AuditSecretError(
                    f"{path}.{key}: this key looks like a secret; secrets never go into the "
                    "audit log. Record an identifier or a fingerprint under another name."
                )
            result[_clean_text(key)] = to_audit_json(item, path=f"{path}.{key}", depth=depth + 1)
        return result
    if isinstance(value, list | tuple):
        return [
            to_audit_json(item, path=f"{path}[{index}]", depth=depth + 1)
            for index, item in enumerate(value)
        ]
    if isinstance(value, set | frozenset):
        items = [to_audit_json(item, path=f"{path}[]", depth=depth + 1) for item in value]
        return sorted(items, key=repr)
    raise AuditValueError(
        f"{path}: {type(value).__name__} is not allowed in an audit event; pass ids, "
        "strings, numbers, booleans, dates, lists or dicts."
    )


def _clean_ip(value: str | None) -> str:
    if not value:
        return ""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return ""


def _clean_request_id(value: str) -> str:
    return _label(value, 64)


def actor_display(actor: Any) -> str:
    full_name = actor.get_full_name() if hasattr(actor, "get_full_name") else ""
    email = getattr(actor, "email", "") or ""
    if full_name and email:
        return f"{full_name} <{email}>"
    return full_name or email or str(actor)


def _lock_chain_head() -> AuditChainHead:
    head = AuditChainHead.objects.select_for_update().filter(pk=AuditChainHead.SINGLETON_ID)
    found = head.first()
    if found is not None:
        return found
    # The row is created by migration 0002 (and again by `flush`); it is missing only after a
    # raw truncate or tampering. Concurrent writers may all get here: get_or_create settles
    # who inserts it, and the lock taken afterwards orders them as usual.
    AuditChainHead.objects.get_or_create(pk=AuditChainHead.SINGLETON_ID)
    found = head.get()
    # A fresh head over existing events would fork the chain: recreate it only for an empty
    # log. (A head another writer just created and used has moved past sequence 0.)
    if found.sequence == 0 and AuditEvent.objects.exists():
        raise AuditChainError(
            "The audit chain head is missing while events exist; run `manage.py audit_verify`."
        )
    return found


def _org_heads(organisation_ids: list[Any]) -> dict[str, str]:
    """The last `org_hash` of each organisation's chain, in one statement: a scalar
    subquery per organisation (its newest scope row, one probe of the (organisation, event)
    index) on the chain head's single row. Read after the lock, in a statement of its own: on
    PostgreSQL a statement that waited for the lock still sees other tables as they were
    when it started."""
    if not organisation_ids:
        return {}
    if one_statement.supported():
        return one_statement.org_heads(organisation_ids)
    newest = {
        f"org_{index}": Subquery(
            AuditEventScope.objects.filter(organisation_id=org_id)
            .order_by("-event_id")
            .values("org_hash")[:1]
        )
        for index, org_id in enumerate(organisation_ids)
    }
    row = (
        AuditChainHead.objects.filter(pk=AuditChainHead.SINGLETON_ID)
        .annotate(**newest)
        .values(*newest)
        .get()
    )
    return {
        str(org_id): row[f"org_{index}"] or GENESIS_HASH
        for index, org_id in enumerate(organisation_ids)
    }


def audit_chain_lock() -> None:
    """Take the audit chain's lock now, inside the caller's transaction.

    For services that must lock rows in the project's order (delegation rows, then the audit
    chain head, then a role row) but would otherwise first touch the chain only after the
    role: taking it early keeps every writer's lock order the same, so none can deadlock.
    """
    if not transaction.get_connection().in_atomic_block:
        raise AuditNotInTransactionError("audit_chain_lock() must run inside transaction.atomic().")
    _lock_chain_head()


def audit_record(
    *,
    action: AuditAction,
    actor: "User | None" = None,
    organisation: "Organisation | None" = None,
    related_organisations: Iterable["Organisation"] = (),
    actor_organisation: "Organisation | None" = None,
    target: models.Model | None = None,
    target_type: str | None = None,
    target_id: object = None,
    target_label: str | None = None,
    before: Any = None,
    after: Any = None,
    metadata: Mapping[str, Any] | None = None,
    outcome: str = AuditEvent.Outcome.SUCCESS,
    actor_label: str | None = None,
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction.

    - `action`: a member of `audit.actions.AuditAction`; any other value raises
      AuditUnknownActionError.
    - `actor`: the user who acted, or None for the system. `actor_label` overrides the copied
      "Name <email>" (e.g. the address typed into a failed sign-in).
    - `organisation`: the primary organisation; `related_organisations` may also see the event
      (a delegation's partner). `actor_organisation` (default: `organisation` when there is an
      actor) is the organisation the actor acted for. An event about a person rather than
      one organisation (sign-in, MFA) passes `organisation=None` and the person's
      organisations as `related_organisations`: every one of them sees it.
    - `target`: a model instance (type "app_label.model", its pk and str()); or give
      `target_type`/`target_id`/`target_label` explicitly (they override the instance's).
    - `before`/`after`/`metadata`: JSON-able values; secret-looking keys raise AuditSecretError.
    - `outcome`: "success", "failure" or "denied".
    """
    if not transaction.get_connection().in_atomic_block:
        raise AuditNotInTransactionError(
            "audit_record() must run inside the transaction.atomic() block of the change it "
            "records, so the change and its event commit or roll back together."
        )
    try:
        return _record(
            action=action,
            actor=actor,
            organisation=organisation,
            related_organisations=related_organisations,
            actor_organisation=actor_organisation,
            target=target,
            target_type=target_type,
            target_id=target_id,
            target_label=target_label,
            before=before,
            after=after,
            metadata=metadata,
            outcome=outcome,
            actor_label=actor_label,
        )
    except DatabaseError as exc:
        transaction.set_rollback(True)
        raise AuditWriteError(
            "The audit event could not be written; the change is rolled back."
        ) from exc
    except BaseException:
        # Fail closed even if the caller catches the exception and carries on.
        transaction.set_rollback(True)
        raise


_AUDIT_RECORD_PARAMETERS = inspect.signature(audit_record).parameters
_AUDIT_RECORD_DEFAULTS = {
    name: parameter.default
    for name, parameter in _AUDIT_RECORD_PARAMETERS.items()
    if parameter.default is not inspect.Parameter.empty
}
_AUDIT_RECORD_REQUIRED = frozenset(_AUDIT_RECORD_PARAMETERS) - frozenset(_AUDIT_RECORD_DEFAULTS)


def audit_refusal(
    *, because: str, metadata: Mapping[str, Any] | None = None, **fields: Any
) -> AuditEvent:
    """Record a refused attempt in a transaction of its own, so that the event survives the
    refusal the caller raises next: `because` under "denied_because", the outcome "denied";
    `fields` are the rest of `audit_record`'s arguments."""
    with transaction.atomic():
        return audit_record(
            **fields,
            metadata={"denied_because": because, **(metadata or {})},
            outcome=AuditEvent.Outcome.DENIED,
        )


def audit_record_many(records: Sequence[Mapping[str, Any]]) -> list[AuditEvent]:
    """Append several events at once, each exactly as `audit_record(**record)` would, in order,
    inside the caller's transaction, failing closed the same way.

    The statements do not grow with the batch (a service moving many rows in one transaction,
    such as the worker's bulk transitions, would otherwise hold the chain head for a round trip
    per event): every event is checked before anything is written, then the chain head is
    locked, every scope organisation's previous link is read in one statement, the events'
    hashes and links are computed here, and the events, their scope rows and the new head are
    written together (one statement on PostgreSQL, three elsewhere)."""
    if not transaction.get_connection().in_atomic_block:
        raise AuditNotInTransactionError(
            "audit_record_many() must run inside the transaction.atomic() block of the changes "
            "it records."
        )
    if not records:
        return []
    try:
        prepared = [_prepare(**_record_arguments(record)) for record in records]
        head = _lock_chain_head()
        return _write_many(prepared, head)
    except DatabaseError as exc:
        transaction.set_rollback(True)
        raise AuditWriteError(
            "The audit events could not be written; the changes are rolled back."
        ) from exc
    except BaseException:
        transaction.set_rollback(True)
        raise


def _write_many(
    prepared: list[tuple[AuditEvent, list[Any]]], head: AuditChainHead
) -> list[AuditEvent]:
    """Chain `prepared` events after the locked `head` and write them with their scope rows
    and the moved head, in a number of statements that does not depend on how many."""
    # Each organisation once, in the order first named (a dict, not a list's `in`: a role's
    # hundred partners made that a hundred times a hundred comparisons of UUIDs).
    organisation_ids = list(
        dict.fromkeys(org_id for _event, scope_ids in prepared for org_id in scope_ids)
    )
    org_heads = _org_heads(organisation_ids)
    scopes: list[AuditEventScope] = []
    for event, scope_ids in prepared:
        _link(event, scope_ids, head)
        for org_id in scope_ids:
            org_prev_hash = org_heads[str(org_id)]
            org_hash = org_link_hash(org_prev_hash, event.hash)
            scopes.append(
                AuditEventScope(
                    event=event,
                    organisation_id=org_id,
                    org_prev_hash=org_prev_hash,
                    org_hash=org_hash,
                )
            )
            org_heads[str(org_id)] = org_hash
        _advance(head, event)
    events = [event for event, _scope_ids in prepared]
    if one_statement.supported():
        one_statement.audit_write_events(events=events, scopes=scopes, head=head)
    else:
        one_statement.insert_events(events)
        AuditEventScope.objects.bulk_create(scopes)
        AuditChainHead.objects.filter(pk=head.pk).update(sequence=head.sequence, hash=head.hash)
    return events


def _record_arguments(record: Mapping[str, Any]) -> dict[str, Any]:
    """`audit_record`'s arguments with its defaults, taken from its signature (rather than
    repeated here); an unknown or missing name raises the TypeError a call would. Not
    `Signature.bind`: at some 36 µs a record it was a tenth of a bulk move's audit work."""
    unknown = sorted(record.keys() - _AUDIT_RECORD_PARAMETERS.keys())
    if unknown:
        raise TypeError(f"audit_record() got an unexpected keyword argument {unknown[0]!r}")
    missing = sorted(_AUDIT_RECORD_REQUIRED - record.keys())
    if missing:
        raise TypeError(f"audit_record() missing a required keyword-only argument: {missing[0]!r}")
    return {**_AUDIT_RECORD_DEFAULTS, **record}


def _record(**arguments: Any) -> AuditEvent:
    event, scope_ids = _prepare(**arguments)
    if one_statement.supported() and one_statement.audit_append(event=event, scope_ids=scope_ids):
        # PostgreSQL: lock, hashes and writes in one round trip.
        return event
    head = _lock_chain_head()
    _link(event, scope_ids, head)
    org_heads = _org_heads(scope_ids)
    event.save()
    scopes = []
    for org_id in scope_ids:
        org_prev_hash = org_heads[str(org_id)]
        scopes.append(
            AuditEventScope(
                event=event,
                organisation_id=org_id,
                org_prev_hash=org_prev_hash,
                org_hash=org_link_hash(org_prev_hash, event.hash),
            )
        )
    AuditEventScope.objects.bulk_create(scopes)
    AuditChainHead.objects.filter(pk=head.pk).update(sequence=event.sequence, hash=event.hash)
    _advance(head, event)
    return event


def _prepare(
    *,
    action: object,
    actor: Any,
    organisation: Any,
    related_organisations: Iterable[Any],
    actor_organisation: Any,
    target: models.Model | None,
    target_type: str | None,
    target_id: object,
    target_label: str | None,
    before: Any,
    after: Any,
    metadata: Mapping[str, Any] | None,
    outcome: str,
    actor_label: str | None,
) -> tuple[AuditEvent, list[Any]]:
    """The event `audit_record` would write, checked and cleaned, not yet on the chain (no
    sequence, time or hashes), and its scope organisations' ids."""
    registered = AuditAction.lookup(action)
    if registered is None:
        raise AuditUnknownActionError(
            f"Audit action {action!r} is not an event type the portal writes: name it in "
            "audit.actions.AuditAction (with its description) and pass the member."
        )
    if outcome not in AuditEvent.Outcome.values:
        raise AuditValueError(
            f"Audit outcome {outcome!r} is not one of {AuditEvent.Outcome.values}."
        )
    if actor is not None and (not getattr(actor, "is_authenticated", False) or actor.pk is None):
        actor = None  # AnonymousUser or an unsaved user is "nobody"; the label says who tried
    if actor is not None and actor_organisation is None:
        actor_organisation = organisation
    if target is not None and target.pk is None:
        raise AuditValueError("The audit target must be saved before it is recorded.")

    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target.pk if target_id is None else target_id
        target_label = str(target) if target_label is None else target_label

    clean_before = to_audit_json(before, path="before")
    clean_after = to_audit_json(after, path="after")
    clean_metadata = to_audit_json(dict(metadata or {}), path="metadata")

    scope_ids: list[Any] = []
    for scope in (organisation, *related_organisations):
        if scope is not None and scope.pk is not None and scope.pk not in scope_ids:
            scope_ids.append(scope.pk)

    origin = current_origin()
    event = AuditEvent(
        hash_version=HASH_VERSION,
        action=registered.value,
        outcome=outcome,
        actor=actor,
        actor_label=_label(
            actor_label if actor_label is not None else (actor_display(actor) if actor else ""),
            255,
        ),
        actor_organisation=actor_organisation,
        actor_organisation_label=_label(actor_organisation, 200) if actor_organisation else "",
        organisation=organisation,
        target_type=_label(target_type, 100),
        target_id=_label(target_id, 64),
        target_label=_label(target_label, 255),
        before=clean_before,
        after=clean_after,
        metadata=clean_metadata,
        source=_label(origin.source, 100),
        source_ip=_clean_ip(origin.source_ip),
        request_id=_clean_request_id(origin.request_id),
    )
    return event, scope_ids


def _link(event: AuditEvent, scope_ids: list[Any], head: AuditChainHead) -> None:
    """Put a prepared event next on the chain after the locked `head`: its sequence, its time
    (taken after the lock, so that times never go backwards along the chain) and its hash."""
    event.sequence = head.sequence + 1
    event.occurred_at = timezone.now()
    event.prev_hash = head.hash
    event.hash = link_hash(head.hash, event.chain_payload(scope_ids))


def _advance(head: AuditChainHead, event: AuditEvent) -> None:
    """The locked head as the database now has it, for the next event of the same batch."""
    head.sequence = event.sequence
    head.hash = event.hash
