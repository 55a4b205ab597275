"""Partner links: the partner link codes an owner hands to a partner so the partner can find it.

A code is shown once, when created; only its SHA-256 is stored. Partners never browse the
list of owners: without a code there is no way to reach an owner's catalogue, and a code
shows nothing of its owner to an organisation it is not valid for. It is valid for a partner
when it is not revoked, expired or used up, the partner's account is on the owner's
allow-list, and (when the owner bound it) the partner's account is the one it names. Every
refusal says the same words (`REFUSAL`) after the same queries and audit writes, so neither
the page nor its timing tells a wrong code from a real one refused.

The code itself never reaches a URL, a log line or the audit log: it is posted once, and
the page keeps the link's id in the session afterwards (`sensitive_variables` keeps it out of
error reports).
"""

import datetime as dt
import re
import secrets
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from accounts.actors import ServiceActor, actor_user, service_label
from accounts.models import Organisation, User, hash_token, validate_account_uid
from accounts.permissions import require_admin_member
from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import audit_record
from delegations.catalog.selectors import partner_account_allow_listed
from delegations.models import PartnerAllowance, PartnerLink

# No 0/O, 1/I/L: the code is read aloud and typed by people.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_GROUPS = 4
CODE_GROUP_LENGTH = 5  # 20 characters of a 31-letter alphabet: ~99 bits
_CODE_SEPARATORS = re.compile(r"[\s\-]+")
CODE_MAX_INPUT_LENGTH = 64
DEFAULT_EXPIRY_DAYS = 14
MAX_EXPIRY_DAYS = 90

# The one answer to a code that does not work, whatever the reason: an organisation the owner
# did not mean it for learns nothing more than someone who mistyped it.
REFUSAL = _(
    "This partner link code is not valid for your organisation. Ask the owner for a new one."
)


_NO_ORGANISATION = uuid.UUID(int=0)


class PartnerLinkRefused(Exception):
    """The code is not valid for this partner; `str()` is `REFUSAL`, for every reason."""

    def __init__(self) -> None:
        super().__init__(REFUSAL)


def partner_link_normalise_code(raw: str) -> str:
    """What a person typed, as stored: capitals, no spaces or dashes."""
    return _CODE_SEPARATORS.sub("", (raw or "")[:CODE_MAX_INPUT_LENGTH]).upper()


def _format_code(compact: str) -> str:
    return "-".join(
        compact[i : i + CODE_GROUP_LENGTH] for i in range(0, len(compact), CODE_GROUP_LENGTH)
    )


@sensitive_variables()
@transaction.atomic
def partner_link_create(
    *,
    owner: Organisation,
    created_by: User,
    label: str,
    expires_at: dt.datetime | None = None,
    partner_account_uid: str = "",
    single_use: bool = False,
) -> tuple[PartnerLink, str]:
    """Create a link; returns it and the code, which is never available again.

    It expires after DEFAULT_EXPIRY_DAYS unless `expires_at` says otherwise (at most
    MAX_EXPIRY_DAYS ahead). `partner_account_uid` binds it to one partner account, which
    must be on the allow-list; `single_use` makes the first request sent through it its last.
    """
    if not owner.is_owner:
        raise ValidationError(gettext("Only resource owners hand out partner links."))
    require_admin_member(
        created_by,
        owner,
        refusal=gettext("Only an admin of %(owner)s can create partner links.") % {"owner": owner},
    )
    label = (label or "").strip()
    if len(label) > 200:
        raise ValidationError({"label": gettext("Keep the label under 200 characters.")})
    now = timezone.now()
    if expires_at is None:
        expires_at = now + dt.timedelta(days=DEFAULT_EXPIRY_DAYS)
    if expires_at <= now:
        raise ValidationError({"expires_at": gettext("The expiry date is in the past.")})
    if expires_at > now + dt.timedelta(days=MAX_EXPIRY_DAYS, minutes=5):
        raise ValidationError(
            {
                "expires_at": gettext("A code can be valid for at most %(MAX_EXPIRY_DAYS)s days.")
                % {"MAX_EXPIRY_DAYS": MAX_EXPIRY_DAYS}
            }
        )
    partner_account_uid = (partner_account_uid or "").strip()
    if partner_account_uid:
        validate_account_uid(partner_account_uid)
        if not partner_account_allow_listed(owner=owner, partner_account_uid=partner_account_uid):
            raise ValidationError(
                {
                    "partner_account_uid": gettext(
                        "%(partner_account_uid)s is not on your allow-list; add it there first."
                    )
                    % {"partner_account_uid": partner_account_uid}
                }
            )
    compact = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUPS * CODE_GROUP_LENGTH))
    link = PartnerLink.objects.create(
        organisation=owner,
        label=label,
        code_hash=hash_token(compact),
        code_hint=compact[-4:],
        created_by=created_by,
        expires_at=expires_at,
        partner_account_uid=partner_account_uid,
        single_use=single_use,
    )
    audit_record(
        action=AuditAction.PARTNER_LINK_CREATED,
        actor=created_by,
        organisation=owner,
        target=link,
        after={
            "label": label,
            "code_hint": link.code_hint,
            "expires_at": expires_at,
            "partner_account_uid": partner_account_uid,
            "single_use": single_use,
        },
    )
    return link, _format_code(compact)


@transaction.atomic
def partner_link_revoke(*, link: PartnerLink, revoked_by: User) -> PartnerLink:
    """Stop a link from working. Delegations already requested through it are unaffected."""
    # The link row only, not its organisation's (see `partner_link_use`).
    locked = (
        PartnerLink.objects.select_for_update(of=("self",))
        .select_related("organisation")
        .get(pk=link.pk)
    )
    require_admin_member(
        revoked_by,
        locked.organisation,
        refusal=gettext("Only an admin of %(organisation)s can revoke links.")
        % {"organisation": locked.organisation},
    )
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


# --- a partner using a code ----------------------------------------------------------------


def _refusal_reason(*, link: PartnerLink | None, partner: Organisation) -> str | None:
    """Why `link` is not valid for `partner`, or None when it is.

    The allow-list query runs whether or not the code named a link (for none, it matches
    the nil id), so a wrong code and a refused real one cost the same queries."""
    owner_id = link.organisation_id if link is not None else _NO_ORGANISATION
    allow_listed = PartnerAllowance.objects.filter(
        organisation_id=owner_id, partner_account_uid=partner.account_uid
    ).exists()
    if link is None:
        return "unknown_code"
    if not partner.is_partner:
        return "not_a_partner"
    if link.revoked_at is not None:
        return "revoked"
    if link.is_expired:
        return "expired"
    if link.is_used_up:
        return "used_up"
    if not allow_listed:
        return "not_allow_listed"
    if link.partner_account_uid and link.partner_account_uid != partner.account_uid:
        return "bound_to_another_account"
    return None


@sensitive_variables()
def _by(actor: User | ServiceActor) -> dict[str, Any]:
    """`audit_record`'s actor arguments for a person or a service account (named by label)."""
    return {"actor": actor_user(actor), "actor_label": service_label(actor)}


def partner_link_redeem(
    *, code: str, partner: Organisation, user: User | ServiceActor
) -> PartnerLink:
    """The link a partner admin's typed code names, if it is valid for their organisation.

    Raises PartnerLinkRefused (always the same words) otherwise. Either way the attempt is
    audited, without the code: a refusal as two events, one for the partner that says only
    that a code was refused, and one with the reason for the code's owner (for the
    operators when the code named no link); a success as one event both organisations see.
    """
    compact = partner_link_normalise_code(code)
    with transaction.atomic():
        link = (
            PartnerLink.objects.select_related("organisation")
            .filter(code_hash=hash_token(compact))
            .first()
            if compact
            else None
        )
        reason = _refusal_reason(link=link, partner=partner)
        if reason is None:
            assert link is not None
            audit_record(
                action=AuditAction.PARTNER_LINK_ACCEPTED,
                **_by(user),
                organisation=link.organisation,
                related_organisations=[partner],
                actor_organisation=partner,
                target=link,
                metadata={"partner_account_uid": partner.account_uid},
            )
            return link
        audit_record(
            action=AuditAction.PARTNER_LINK_CODE_REFUSED,
            **_by(user),
            organisation=partner,
            actor_organisation=partner,
            metadata={"code_length": len(compact)},
            outcome=AuditEvent.Outcome.DENIED,
        )
        audit_record(
            action=AuditAction.PARTNER_LINK_USE_REFUSED,
            **_by(user),
            organisation=link.organisation if link is not None else None,
            actor_organisation=partner,
            target=link,
            target_type=None if link is not None else PartnerLink._meta.label_lower,
            metadata={"reason": reason, "partner_account_uid": partner.account_uid},
            outcome=AuditEvent.Outcome.DENIED,
        )
    # Raised after the block, so the refusal's events commit.
    raise PartnerLinkRefused


def partner_link_for_partner(*, link_id: object, partner: Organisation) -> PartnerLink | None:
    """The link a partner redeemed earlier (its id kept in the session), if it is still
    valid for them; None once it was revoked, expired, used up or the allow-list changed."""
    try:
        link_uuid = uuid.UUID(str(link_id))
    except ValueError:
        return None
    link = PartnerLink.objects.select_related("organisation").filter(pk=link_uuid).first()
    if link is None or _refusal_reason(link=link, partner=partner) is not None:
        return None
    return link


def partner_link_use(
    *, link: PartnerLink, partner: Organisation, used_by: User | ServiceActor
) -> PartnerLink:
    """Check `link` again for `partner` under its row lock, inside the caller's transaction,
    and use up a single-use link. Raises ValidationError(REFUSAL) when it is not valid."""
    # The link row only (`of`): a plain FOR UPDATE also locked the owner's Organisation row
    # until this request's commit, and every worker commit that audits for the owner must
    # key-share that row (its deferred foreign keys) while holding the audit chain this request
    # then waits for: PostgreSQL found the deadlock in benchmarks/fleet_apply.py (a fleet
    # requested while the worker finished applying the previous one).
    locked = (
        PartnerLink.objects.select_for_update(of=("self",))
        .select_related("organisation")
        .get(pk=link.pk)
    )
    if _refusal_reason(link=locked, partner=partner) is not None:
        raise ValidationError(REFUSAL)
    if locked.single_use:
        locked.used_at = timezone.now()
        locked.used_by = partner
        locked.save(update_fields=["used_at", "used_by"])
        audit_record(
            action=AuditAction.PARTNER_LINK_USED_UP,
            **_by(used_by),
            organisation=locked.organisation,
            related_organisations=[partner],
            actor_organisation=partner,
            target=locked,
            before={"used": False},
            after={"used": True},
        )
    return locked
