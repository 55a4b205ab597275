"""Access reviews across the company boundary as state changes.

- `review_schedule_set`: an owner admin schedules reviews (every N days, a deadline, the
  default outcome for what nobody answers: remind, or revoke).
- `review_campaign_start`: a round of questions, one per granted delegation to its approvers
  (keep / shorten / revoke), those approved for a later start included, and one per assigned
  person to the partner's admins (keep / unassign); both sides hear in the transaction that
  starts it.
- `review_decide`: one answer, under the question's row lock; shorten, revoke and unassign go
  through the lifecycle's and the partner area's own services.
- `reviews_sweep` (beat): starts the rounds that are due, reminds the people who still owe an
  answer (once a day), and closes rounds at their deadline, applying the default outcome.
  Re-runnable: every step is conditional on the rows it changes, under their locks.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import Organisation, User
from accounts.permissions import is_admin_member, is_member, require_owner_admin
from audit.actions import AuditAction
from audit.services import audit_record, audit_refusal
from delegations.approvals.selectors import rules_in_force
from delegations.lifecycle.oversight import delegation_revoke_by_rule, delegation_shorten
from delegations.lifecycle.services import delegation_revoke
from delegations.lifecycle.transitions import clean_reason
from delegations.models import (
    DESIRED_PRESENT_STATUSES,
    MAX_REVIEW_DEADLINE_DAYS,
    MAX_REVIEW_EVERY_DAYS,
    Delegation,
    ReviewCampaign,
    ReviewItem,
    ReviewOutcome,
    ReviewSchedule,
    StaffAssignment,
)
from delegations.partner.oversight import staff_unassign_by_rule
from delegations.partner.services import staff_unassign
from delegations.versioned import versioned_save
from notifications.events import NotificationEvent
from notifications.services import Notice, notice_mark_once, notify, organisation_admins

Decision = ReviewItem.Decision
Side = ReviewItem.Side
RULE = "access_review_deadline"
OWNER_DECISIONS = frozenset({Decision.KEEP, Decision.SHORTEN, Decision.REVOKE})
PARTNER_DECISIONS = frozenset({Decision.KEEP, Decision.UNASSIGN})
# What a round asks about: access granted, whether it is in the cloud yet or approved for a
# later start. A grant that starts after the round's deadline would otherwise reach no round
# before it has run for a whole period.
REVIEWED_STATUSES = DESIRED_PRESENT_STATUSES | {Delegation.Status.SCHEDULED}


def _require_owner_admin(user: User, owner: Organisation) -> None:
    require_owner_admin(
        user, owner, refusal=_("Only an admin of the owner organisation schedules reviews.")
    )


# --- the schedule ---------------------------------------------------------------------------


def review_schedule_validate(
    *, every_days: int | None, deadline_days: int | None, default_outcome: str
) -> None:
    errors: dict[str, str] = {}
    if not isinstance(every_days, int) or not 1 <= every_days <= MAX_REVIEW_EVERY_DAYS:
        errors["every_days"] = _("Review every 1 to %(max)d days.") % {"max": MAX_REVIEW_EVERY_DAYS}
    if not isinstance(deadline_days, int) or not 1 <= deadline_days <= MAX_REVIEW_DEADLINE_DAYS:
        errors["deadline_days"] = _("Give reviewers 1 to %(max)d days.") % {
            "max": MAX_REVIEW_DEADLINE_DAYS
        }
    elif isinstance(every_days, int) and deadline_days > every_days:
        errors["deadline_days"] = _("The deadline must come before the next review starts.")
    if default_outcome not in ReviewOutcome.values:
        errors["default_outcome"] = _("Choose what happens when nobody answers.")
    if errors:
        raise ValidationError(errors)


def _schedule_view(schedule: ReviewSchedule) -> dict[str, Any]:
    return {
        "every_days": schedule.every_days,
        "deadline_days": schedule.deadline_days,
        "default_outcome": schedule.default_outcome,
        "next_run_at": schedule.next_run_at,
        "active": schedule.is_active,
    }


def review_schedule_set(
    *,
    owner: Organisation,
    set_by: User,
    every_days: int,
    deadline_days: int,
    default_outcome: str,
    next_run_at: dt.datetime | None = None,
    active: bool = True,
) -> ReviewSchedule:
    """Schedule the owner's access reviews (the first round at `next_run_at`, now by
    default), or change the schedule."""
    _require_owner_admin(set_by, owner)
    review_schedule_validate(
        every_days=every_days, deadline_days=deadline_days, default_outcome=default_outcome
    )
    next_run_at = next_run_at or timezone.now()
    wanted = {
        "every_days": every_days,
        "deadline_days": deadline_days,
        "default_outcome": default_outcome,
        "next_run_at": next_run_at,
        "is_active": active,
    }
    with transaction.atomic():
        schedule, created = ReviewSchedule.objects.select_for_update().get_or_create(
            organisation=owner, defaults={**wanted, "updated_by": set_by}
        )
        before = None if created else _schedule_view(schedule)
        if not created:
            versioned_save(schedule, wanted, by=set_by)
        audit_record(
            action=AuditAction.REVIEW_SCHEDULE_SET,
            actor=set_by,
            organisation=owner,
            target=schedule,
            target_label=_("Access reviews"),
            before=before,
            after={**_schedule_view(schedule), "version": schedule.version},
        )
    return schedule


# --- a round of questions ----------------------------------------------------------------


def _owner_reviewers(delegation: Delegation) -> list[User]:
    admins = organisation_admins(delegation.owner)
    ids = rules_in_force(delegation=delegation).approver_ids
    return admins if ids is None else [admin for admin in admins if admin.pk in ids]


def _review_link(campaign: ReviewCampaign) -> str:
    return reverse("delegations:access_review", args=[campaign.pk])


def _announce(
    campaign: ReviewCampaign,
    *,
    event: NotificationEvent,
    key: str,
    organisation: Organisation,
    people: Iterable[User],
    title: str,
    summary: str,
) -> None:
    notify(
        key=key,
        notice=Notice(
            event=event,
            title=title,
            summary=summary,
            link_path=_review_link(campaign),
            facts=(
                (_("Owner"), campaign.organisation.name),
                (_("Deadline"), campaign.deadline_at.strftime("%Y-%m-%d %H:%M UTC")),
            ),
        ),
        organisation=organisation,
        people=list(people),
    )


def _ask(
    campaign: ReviewCampaign, items: list[ReviewItem], *, event: NotificationEvent, key: str
) -> None:
    """Tell each side who owes answers in `items`: the owner's reviewers, each partner's
    admins."""
    owner_people: dict[object, User] = {}
    partners: Counter[object] = Counter()
    partner_of: dict[object, Organisation] = {}
    for item in items:
        if item.side == Side.OWNER:
            for person in _owner_reviewers(item.delegation):
                owner_people[person.pk] = person
        else:
            partners[item.partner_id] += 1
            partner_of[item.partner_id] = item.partner
    owner_count = sum(1 for item in items if item.side == Side.OWNER)
    reminder = event is NotificationEvent.ACCESS_REVIEW_REMINDER
    if owner_count:
        _announce(
            campaign,
            event=event,
            key=f"{key}:owner",
            organisation=campaign.organisation,
            people=owner_people.values(),
            title=(
                ngettext(
                    "Access review: %(n)d delegation still needs your answer",
                    "Access review: %(n)d delegations still need your answer",
                    owner_count,
                )
                if reminder
                else _("Access review: is each partner's access still needed? (%(n)d)")
            )
            % {"n": owner_count},
            summary=_("Keep, shorten or revoke each delegation before the deadline."),
        )
    for partner_id, count in partners.items():
        partner = partner_of[partner_id]
        _announce(
            campaign,
            event=event,
            key=f"{key}:partner:{partner_id}",
            organisation=partner,
            people=organisation_admins(partner),
            title=(
                ngettext(
                    "Access review by %(owner)s: %(n)d assignment still needs your answer",
                    "Access review by %(owner)s: %(n)d assignments still need your answer",
                    count,
                )
                if reminder
                else _("Access review by %(owner)s: confirm the staff assigned (%(n)d)")
            )
            % {"owner": campaign.organisation.name, "n": count},
            summary=_("Keep or unassign each person before the deadline."),
        )


def review_campaign_start(
    *, owner: Organisation, started_by: User | None, now: dt.datetime | None = None
) -> ReviewCampaign:
    """Start a round now: every granted delegation (active, being applied, or approved for a
    later start) to its approvers, every person assigned to one to their partner's admins.
    One open round at a time."""
    if started_by is not None:
        _require_owner_admin(started_by, owner)
    now = now or timezone.now()
    with transaction.atomic():
        schedule = ReviewSchedule.objects.select_for_update().filter(organisation=owner).first()
        if schedule is None:
            raise ValidationError(_("Schedule access reviews first."))
        if ReviewCampaign.objects.filter(
            organisation=owner, status=ReviewCampaign.Status.OPEN
        ).exists():
            raise ValidationError(_("An access review is already open; it closes at its deadline."))
        campaign = ReviewCampaign.objects.create(
            organisation=owner,
            schedule_version=schedule.version,
            default_outcome=schedule.default_outcome,
            started_at=now,
            deadline_at=now + dt.timedelta(days=schedule.deadline_days),
            started_by=started_by,
        )
        schedule.next_run_at = now + dt.timedelta(days=schedule.every_days)
        schedule.save(update_fields=["next_run_at", "updated_at"])
        delegations = list(
            Delegation.objects.filter(owner=owner, status__in=REVIEWED_STATUSES)
            .select_related("owner", "partner", "catalog_role")
            .order_by("created_at")
        )
        items = [
            ReviewItem(campaign=campaign, side=Side.OWNER, delegation=d, partner=d.partner)
            for d in delegations
        ]
        assignments = StaffAssignment.objects.filter(
            delegation__in=delegations, ended_at__isnull=True
        ).select_related("delegation", "partner")
        items += [
            ReviewItem(
                campaign=campaign,
                side=Side.PARTNER,
                delegation=a.delegation,
                assignment=a,
                partner=a.partner,
            )
            for a in assignments
        ]
        ReviewItem.objects.bulk_create(items)
        audit_record(
            action=AuditAction.REVIEW_CAMPAIGN_STARTED,
            actor=started_by,
            organisation=owner,
            related_organisations=sorted({d.partner for d in delegations}, key=lambda o: str(o.pk)),
            target=campaign,
            target_label=_("Access review of %(date)s") % {"date": now.strftime("%Y-%m-%d")},
            after={
                "delegations": sum(1 for i in items if i.side == Side.OWNER),
                "not_started": sum(
                    1
                    for d in delegations
                    if d.status == Delegation.Status.SCHEDULED or d.starts_at > now
                ),
                "assignments": sum(1 for i in items if i.side == Side.PARTNER),
                "deadline_at": campaign.deadline_at,
                "default_outcome": campaign.default_outcome,
                "schedule_version": schedule.version,
            },
        )
        _ask(
            campaign,
            items,
            event=NotificationEvent.ACCESS_REVIEW_REQUESTED,
            key=f"{NotificationEvent.ACCESS_REVIEW_REQUESTED.value}:{campaign.pk}",
        )
    return campaign


# --- answers -------------------------------------------------------------------------------


def review_refusal(*, item: ReviewItem, user: User) -> str | None:
    """Why `user` may not answer `item`, or None (reads only)."""
    delegation = item.delegation
    if item.side == Side.OWNER:
        if not is_admin_member(user, delegation.owner):
            return _("Only the owner's approvers answer whether this access is still needed.")
        if is_member(user, delegation.partner):
            return _("You are a member of the partner; another owner admin must answer.")
        ids = rules_in_force(delegation=delegation).approver_ids
        if ids is not None and user.pk not in ids:
            return _("Only the approvers of this role and partner answer for it.")
        return None
    if not is_admin_member(user, item.partner):
        return _("Only an admin of %(partner)s confirms its staff.") % {
            "partner": item.partner.name
        }
    return None


def _deny(item: ReviewItem, user: User, reason: str) -> None:
    audit_refusal(
        because=reason,
        action=AuditAction.REVIEW_DENIED,
        actor=user,
        organisation=item.campaign.organisation,
        related_organisations=[item.partner],
        target=item.campaign,
        metadata={"review_item": str(item.pk)},
    )


def _item_label(item: ReviewItem) -> str:
    role = item.delegation.catalog_role.role_name
    if item.assignment_id is not None and item.assignment is not None:
        return f"{item.assignment.user.email} on {role} for {item.partner.name}"
    return f"{role} for {item.partner.name}"


def review_decide(
    *,
    item: ReviewItem,
    decided_by: User,
    decision: str,
    new_ends_at: dt.datetime | None = None,
    note: str = "",
) -> ReviewItem:
    """Answer one question. The owner's approvers keep, shorten (`new_ends_at`) or revoke a
    delegation; the partner's admins keep or unassign a person. A double click changes
    nothing; a question someone else answered is refused."""
    current = ReviewItem.objects.select_related(
        "campaign__organisation",
        "partner",
        "delegation__owner",
        "delegation__partner",
        "delegation__catalog_role",
    ).get(pk=item.pk)
    refusal = review_refusal(item=current, user=decided_by)
    if refusal is not None:
        _deny(current, decided_by, refusal)
        raise PermissionDenied(refusal)
    allowed = OWNER_DECISIONS if current.side == Side.OWNER else PARTNER_DECISIONS
    if decision not in allowed:
        raise ValidationError({"decision": _("Choose one of the answers offered.")})
    if decision == Decision.SHORTEN and new_ends_at is None:
        raise ValidationError({"new_ends_at": _("Choose the new, earlier end.")})
    note = clean_reason(note, field="note", required=decision == Decision.REVOKE)
    with transaction.atomic():
        locked = (
            ReviewItem.objects.select_for_update(of=("self",))
            .select_related(
                "campaign__organisation",
                "partner",
                "delegation__catalog_role",
                "delegation__owner",
                "delegation__partner",
                "assignment__user",
            )
            .get(pk=item.pk)
        )
        if not locked.is_pending:
            if locked.decision == decision and locked.decided_by_id == decided_by.pk:
                return locked
            who = locked.decided_by or _("the deadline")
            raise ValidationError(
                _("This was already answered by %(who)s: %(decision)s.")
                % {"who": who, "decision": locked.get_decision_display().lower()}
            )
        if locked.campaign.status != ReviewCampaign.Status.OPEN:
            raise ValidationError(_("This access review is closed."))
        # The deadline is the answer's limit, not the sweep that closes the round minutes
        # later: a late "keep" must not beat the outcome the owner set for unanswered ones.
        if not locked.campaign.takes_answers:
            raise ValidationError(
                _(
                    "The deadline of this access review has passed: unanswered questions get "
                    "the outcome the owner chose for them."
                )
            )
        reason = _("Access review: %(note)s") % {"note": note} if note else _("Access review")
        if decision == Decision.SHORTEN:
            assert new_ends_at is not None
            delegation_shorten(
                delegation=locked.delegation,
                shortened_by=decided_by,
                ends_at=new_ends_at,
                reason=reason,
            )
        elif decision == Decision.REVOKE:
            delegation_revoke(delegation=locked.delegation, revoked_by=decided_by, reason=reason)
        elif decision == Decision.UNASSIGN:
            assert locked.assignment is not None
            staff_unassign(assignment=locked.assignment, unassigned_by=decided_by)
        locked.decision = decision
        locked.decided_by = decided_by
        locked.decided_at = timezone.now()
        locked.new_ends_at = new_ends_at if decision == Decision.SHORTEN else None
        locked.note = note
        locked.save(update_fields=["decision", "decided_by", "decided_at", "new_ends_at", "note"])
        audit_record(
            action=AuditAction.REVIEW_DECIDED,
            actor=decided_by,
            organisation=locked.campaign.organisation,
            related_organisations=[locked.partner],
            actor_organisation=(
                locked.campaign.organisation if locked.side == Side.OWNER else locked.partner
            ),
            target=locked.delegation,
            target_label=_item_label(locked),
            before={"decision": Decision.PENDING},
            after={"decision": decision, "new_ends_at": locked.new_ends_at},
            metadata={
                "review_campaign": str(locked.campaign_id),
                "review_item": str(locked.pk),
                "side": locked.side,
                "note": note,
                **({"staff": locked.assignment.user.email} if locked.assignment else {}),
            },
        )
        return locked


# --- the scheduler's -------------------------------------------------------------------------


def _moot(item: ReviewItem) -> bool:
    """The question no longer stands: the access ended, or the person was unassigned."""
    if item.delegation.is_final or item.delegation.end_cause:
        return True
    return item.assignment is not None and item.assignment.ended_at is not None


def review_campaign_close(*, campaign: ReviewCampaign, now: dt.datetime | None = None) -> int:
    """At the deadline: what nobody answered gets the campaign's outcome (a last reminder and
    the access kept, or revocation through the lifecycle / unassignment). Returns how many
    questions were closed that way."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = (
            ReviewCampaign.objects.select_for_update()
            .select_related("organisation")
            .get(pk=campaign.pk)
        )
        if locked.status != ReviewCampaign.Status.OPEN or locked.deadline_at > now:
            return 0
        pending = list(
            ReviewItem.objects.select_for_update(of=("self",))
            .filter(campaign=locked, decision=Decision.PENDING)
            .select_related(
                "delegation__owner",
                "delegation__partner",
                "delegation__catalog_role",
                "assignment__user",
                "assignment__partner",
                "partner",
            )
            .order_by("side", "pk")
        )
        revoke = locked.default_outcome == ReviewOutcome.REVOKE
        outcome: Counter[str] = Counter()
        unanswered: list[ReviewItem] = []
        reason = _("Access review of %(date)s: no answer by the deadline") % {
            "date": locked.started_at.strftime("%Y-%m-%d")
        }
        for item in pending:
            if _moot(item):
                item.decision = Decision.ENDED
            elif not revoke:
                item.decision = Decision.REMINDED
                unanswered.append(item)
            elif item.side == Side.OWNER:
                delegation_revoke_by_rule(delegation=item.delegation, reason=reason, rule=RULE)
                item.decision = Decision.REVOKED_BY_DEADLINE
            else:
                assert item.assignment is not None
                staff_unassign_by_rule(assignment=item.assignment, reason=reason, rule=RULE)
                item.decision = Decision.REVOKED_BY_DEADLINE
            item.decided_at = now
            item.save(update_fields=["decision", "decided_at"])
            outcome[item.decision] += 1
        locked.status = ReviewCampaign.Status.CLOSED
        locked.closed_at = now
        locked.save(update_fields=["status", "closed_at"])
        audit_record(
            action=AuditAction.REVIEW_CAMPAIGN_CLOSED,
            actor=None,
            organisation=locked.organisation,
            related_organisations=sorted({i.partner for i in pending}, key=lambda o: str(o.pk)),
            target=locked,
            target_label=_("Access review of %(date)s")
            % {"date": locked.started_at.strftime("%Y-%m-%d")},
            before={"status": ReviewCampaign.Status.OPEN},
            after={"status": ReviewCampaign.Status.CLOSED, **dict(outcome)},
            metadata={"default_outcome": locked.default_outcome, "rule": RULE},
        )
        if unanswered:
            _ask(
                locked,
                unanswered,
                event=NotificationEvent.ACCESS_REVIEW_REMINDER,
                key=f"{NotificationEvent.ACCESS_REVIEW_REMINDER.value}:{locked.pk}:deadline",
            )
        _announce(
            locked,
            event=NotificationEvent.ACCESS_REVIEW_CLOSED,
            key=f"{NotificationEvent.ACCESS_REVIEW_CLOSED.value}:{locked.pk}",
            organisation=locked.organisation,
            people=organisation_admins(locked.organisation),
            title=_("Access review closed"),
            summary=_("Unanswered: %(n)d. See the review report for who decided what.")
            % {"n": len(pending)},
        )
        return len(pending)


def _remind(campaign: ReviewCampaign, *, now: dt.datetime) -> bool:
    day = int((now - campaign.started_at) / dt.timedelta(days=1))
    if day < 1:
        return False
    key = f"{NotificationEvent.ACCESS_REVIEW_REMINDER.value}:{campaign.pk}:{day}"
    pending = list(
        ReviewItem.objects.filter(campaign=campaign, decision=Decision.PENDING).select_related(
            "delegation__owner", "delegation__partner", "delegation__catalog_role", "partner"
        )
    )
    if not pending:
        return False
    with transaction.atomic():
        if not notice_mark_once(key=key):
            return False
        _ask(campaign, pending, event=NotificationEvent.ACCESS_REVIEW_REMINDER, key=key)
    return True


def reviews_sweep(*, now: dt.datetime | None = None, limit: int = 100) -> dict[str, int]:
    """Beat: start the rounds that are due, remind daily, close rounds at their deadline."""
    now = now or timezone.now()
    counts = {"started": 0, "reminded": 0, "closed": 0}
    for campaign in ReviewCampaign.objects.filter(
        status=ReviewCampaign.Status.OPEN, deadline_at__lte=now
    ).order_by("deadline_at")[:limit]:
        review_campaign_close(campaign=campaign, now=now)
        counts["closed"] += 1
    due = ReviewSchedule.objects.filter(is_active=True, next_run_at__lte=now).select_related(
        "organisation"
    )
    for schedule in due[:limit]:
        try:
            review_campaign_start(owner=schedule.organisation, started_by=None, now=now)
        except ValidationError:
            continue  # a round is still open: the next sweep after it closes starts this one
        counts["started"] += 1
    for campaign in ReviewCampaign.objects.filter(status=ReviewCampaign.Status.OPEN)[:limit]:
        counts["reminded"] += int(_remind(campaign, now=now))
    return counts
