"""What the delegation lifecycle tells people, and when: the bridge from delegations'
events to `notifications.notify`, called by the services inside the transaction of the
change (never by signals or views).

- `delegation_announce`: one notice per lifecycle event (request, offer, approval, rejection,
  withdrawal, activation, failed apply, revocation, expiry), to the admins concerned on each
  side (never the person who acted) and each side's subscribed chat channels.
- `credentials_issued_notify`: a security notice to the person credentials were issued to.
- `delegations_remind_due` (beat): reminders of requests nobody decided (after
  PORTAL_REMIND_AFTER, then daily, the escalation contact too) and warnings 24 h and 1 h
  before access ends, each sent once per delegation and kind (`notice_mark_once`); a fleet's
  accounts ending together get one warning, and one end notice, for the fleet.

A notice carries names, dates and links, never a secret, a credential, a partner-link code
or an ExternalId.

Inside: `telling` makes a delegation's notice and finds who hears it; `fleet` tells a fleet's
accounts as one; `transitions` maps each audited event to its notice; `reminders` is the
scheduler's.
"""

from delegations.notices.fleet import (
    fleet_announce,
    fleet_digest,
    fleet_expired_announce,
    fleet_run_announce,
)
from delegations.notices.reminders import EXPIRY_WARNINGS, delegations_remind_due
from delegations.notices.transitions import (
    PreparedNotices,
    break_glass_announce,
    credentials_issued_notify,
    decision_announce,
    delegation_announce,
    delegations_announce_many,
    delegations_announce_prepare,
)

__all__ = [
    "EXPIRY_WARNINGS",
    "PreparedNotices",
    "break_glass_announce",
    "credentials_issued_notify",
    "decision_announce",
    "delegation_announce",
    "delegations_announce_many",
    "delegations_announce_prepare",
    "delegations_remind_due",
    "fleet_announce",
    "fleet_digest",
    "fleet_expired_announce",
    "fleet_run_announce",
]
