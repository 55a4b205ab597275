"""Partner links: the codes an owner hands to a partner so the partner can find it.

A code is shown once, when created; only its SHA-256 is stored. Partners never browse the
list of owners: without a code there is no way to reach an owner's catalogue.
"""

import datetime as dt
import re
import secrets

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Organisation, User, hash_token
from audit.actions import AuditAction
from audit.services import audit_record
from delegations.models import PartnerLink

# No 0/O, 1/I/L: the code is read aloud and typed by people.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_GROUPS = 4
CODE_GROUP_LENGTH = 5  # 20 characters of a 31-letter alphabet: ~99 bits
_CODE_SEPARATORS = re.compile(r"[\s\-]+")
CODE_MAX_INPUT_LENGTH = 64


def partner_link_normalise_code(raw: str) -> str:
    """What a person typed, as stored: capitals, no spaces or dashes."""
    return _CODE_SEPARATORS.sub("", (raw or "")[:CODE_MAX_INPUT_LENGTH]).upper()


def _format_code(compact: str) -> str:
    return "-".join(
        compact[i : i + CODE_GROUP_LENGTH] for i in range(0, len(compact), CODE_GROUP_LENGTH)
    )


@transaction.atomic
def partner_link_create(
    *,
    owner: Organisation,
    created_by: User,
    label: str,
    expires_at: dt.datetime | None = None,
) -> tuple[PartnerLink, str]:
    """Create a link; returns it and the code, which is never available again."""
    if not owner.is_owner:
        raise ValidationError("Only resource owners hand out partner links.")
    if not Membership.objects.filter(
        user=created_by, organisation=owner, role=Membership.Role.ADMIN
    ).exists():
        raise PermissionDenied(f"Only an admin of {owner} can create partner links.")
    label = (label or "").strip()
    if len(label) > 200:
        raise ValidationError({"label": "Keep the label under 200 characters."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry date is in the past."})
    compact = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUPS * CODE_GROUP_LENGTH))
    link = PartnerLink.objects.create(
        organisation=owner,
        label=label,
        code_hash=hash_token(compact),
        code_hint=compact[-4:],
        created_by=created_by,
        expires_at=expires_at,
    )
    audit_record(
        action=AuditAction.PARTNER_LINK_CREATED,
        actor=created_by,
        organisation=owner,
        target=link,
        after={"label": label, "code_hint": link.code_hint, "expires_at": expires_at},
    )
    return link, _format_code(compact)


@transaction.atomic
def partner_link_revoke(*, link: PartnerLink, revoked_by: User) -> PartnerLink:
    """Stop a link from working. Delegations already requested through it are unaffected."""
    locked = PartnerLink.objects.select_for_update().select_related("organisation").get(pk=link.pk)
    if not Membership.objects.filter(
        user=revoked_by, organisation=locked.organisation, role=Membership.Role.ADMIN
    ).exists():
        raise PermissionDenied(f"Only an admin of {locked.organisation} can revoke links.")
    if locked.revoked_at is not None:
        return locked
    locked.revoked_at = timezone.now()
    locked.revoked_by = revoked_by
    locked.save(update_fields=["revoked_at", "revoked_by"])
    audit_record(
        action=AuditAction.PARTNER_LINK_REVOKED,
        actor=revoked_by,
        organisation=locked.organisation,
        target=locked,
        before={"revoked": False},
        after={"revoked": True},
    )
    return locked
