"""The rows a credential issuance stands on, locked and read again in one statement.

An issuance holds its locks across AssumeRole, so that a revoke, an unassignment, a change of
the person's role or a revoked credentials-URI key commits either before it (and the issuance
sees it) or after it. The rows are the delegation, the person's membership of the partner, the
assignment and, for the credentials URI, its key: in the project's lock order (delegation,
membership, assignment). On PostgreSQL that is one `SELECT ... FOR UPDATE OF` joining the
four tables instead of one round trip per row; the membership is an inner join (PostgreSQL
does not lock the nullable side of an outer join), so no row at all means "not a member".
SQLite has no row locks (a writer holds the whole database), so there the same values are
read with the ORM.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection

from accounts.models import Membership, User
from delegations.models import CredentialsUriToken, Delegation, StaffAssignment

# The delegation's trust fields an issuance reads again under the lock.
TRUST_FIELDS = (
    "trust_scope",
    "named_people_cap",
    "named_scope_trusts_broker",
    "external_id_ciphertext",
)


@dataclass(frozen=True)
class IssuingRows:
    """What can change under an issuance, as the locked rows have it now."""

    status: str
    ends_at: dt.datetime | None
    version: int
    member_role: str | None  # None: not a member of the partner any more
    ended_at: dt.datetime | None
    session_policy_kind: str
    session_policy: str
    # Whom the trust policy names: the scope, its cap, the broker, the ExternalId.
    trust_scope: str
    named_people_cap: int
    named_scope_trusts_broker: bool
    external_id_ciphertext: str
    key_revoked_at: dt.datetime | None = None
    key_expires_at: dt.datetime | None = None
    key_use_count: int = 0


def _table(model: type) -> str:
    return connection.ops.quote_name(model._meta.db_table)  # type: ignore[attr-defined]


def _one_statement(
    *, delegation_id: object, assignment_id: object, user: User, uri_key_id: object | None
) -> IssuingRows | None:
    key_columns = ", k.revoked_at, k.expires_at, k.use_count" if uri_key_id is not None else ""
    key_join = (
        f" JOIN {_table(CredentialsUriToken)} k ON k.id = %s" if uri_key_id is not None else ""
    )
    key_lock = ", k" if uri_key_id is not None else ""
    # Only table names (quoted by the backend) and fixed fragments are formatted in; every
    # value is a parameter.
    sql = (
        "SELECT d.status, d.ends_at, d.version, m.role, a.ended_at, a.session_policy_kind, "  # noqa: S608
        "a.session_policy, d.trust_scope, d.named_people_cap, d.named_scope_trusts_broker, "
        f"d.external_id_ciphertext{key_columns} "
        f"FROM {_table(Delegation)} d "
        f"JOIN {_table(StaffAssignment)} a ON a.id = %s AND a.delegation_id = d.id "
        f"JOIN {_table(Membership)} m ON m.organisation_id = d.partner_id AND m.user_id = %s"
        f"{key_join} WHERE d.id = %s FOR UPDATE OF d, m, a{key_lock}"
    )
    params: list[Any] = [assignment_id, user.pk]
    if uri_key_id is not None:
        params.append(uri_key_id)
    params.append(delegation_id)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    return IssuingRows(*row)


def issuing_rows_lock(
    *,
    delegation: Delegation,
    assignment: StaffAssignment,
    user: User,
    uri_key: CredentialsUriToken | None,
) -> IssuingRows:
    """Lock the issuance's rows (inside the caller's transaction) and return them as they are.

    A person who is no longer a member of the partner gets `member_role=None`; the rest is
    then what the caller already had (nothing is issued to a non-member, whatever it says)."""
    uri_key_id = uri_key.pk if uri_key is not None else None
    if connection.features.has_select_for_update_of:
        found = _one_statement(
            delegation_id=delegation.pk,
            assignment_id=assignment.pk,
            user=user,
            uri_key_id=uri_key_id,
        )
        if found is not None:
            return found
        member_role = None
    else:
        member_role = (
            Membership.objects.filter(user=user, organisation_id=delegation.partner_id)
            .order_by()
            .values_list("role", flat=True)
            .first()
        )
        fresh = Delegation.objects.values("status", "ends_at", "version", *TRUST_FIELDS).get(
            pk=delegation.pk
        )
        for name, value in fresh.items():
            setattr(delegation, name, value)
        fields = ("ended_at", "session_policy_kind", "session_policy")
        for name, value in StaffAssignment.objects.values(*fields).get(pk=assignment.pk).items():
            setattr(assignment, name, value)
        if uri_key is not None:
            fields = ("revoked_at", "expires_at", "use_count")
            for name, value in (
                CredentialsUriToken.objects.values(*fields).get(pk=uri_key.pk).items()
            ):
                setattr(uri_key, name, value)
    return IssuingRows(
        status=delegation.status,
        ends_at=delegation.ends_at,
        version=delegation.version,
        member_role=member_role,
        ended_at=assignment.ended_at,
        session_policy_kind=assignment.session_policy_kind,
        session_policy=assignment.session_policy,
        trust_scope=delegation.trust_scope,
        named_people_cap=delegation.named_people_cap,
        named_scope_trusts_broker=delegation.named_scope_trusts_broker,
        external_id_ciphertext=delegation.external_id_ciphertext,
        key_revoked_at=uri_key.revoked_at if uri_key is not None else None,
        key_expires_at=uri_key.expires_at if uri_key is not None else None,
        key_use_count=uri_key.use_count if uri_key is not None else 0,
    )


def issuing_rows_apply(
    rows: IssuingRows,
    *,
    delegation: Delegation,
    assignment: StaffAssignment,
    uri_key: CredentialsUriToken | None,
) -> None:
    """Copy the locked values onto the objects the issuance already loaded."""
    delegation.status = rows.status
    delegation.ends_at = rows.ends_at
    delegation.version = rows.version
    for name in TRUST_FIELDS:
        setattr(delegation, name, getattr(rows, name))
    assignment.ended_at = rows.ended_at
    assignment.session_policy_kind = rows.session_policy_kind
    assignment.session_policy = rows.session_policy
    if uri_key is not None:
        uri_key.revoked_at = rows.key_revoked_at
        uri_key.expires_at = rows.key_expires_at  # type: ignore[assignment]
        uri_key.use_count = rows.key_use_count
