"""Events accounts announces so the apps built on it can act, without accounts importing them.

accounts sits below delegations in the floor plan, yet removing a member has consequences
there (a partner's staff member loses their assignments). So accounts sends the event and the
app above connects a receiver in its `AppConfig.ready()`.

Receivers run synchronously inside the sender's transaction (`Signal.send`, not
`send_robust`): one that raises rolls the whole change back, audit events included.
"""

from django.dispatch import Signal

# Sent by `accounts.services.membership_remove` after it locked the membership and before it
# writes its own audit event and deletes the row. Keyword arguments: `membership` (the locked
# `Membership`, its user still attached) and `removed_by` (the acting `User`).
member_removed = Signal()

# Sent by `accounts.services.invitation_create` once the invitation row and its audit event
# are written, inside the same transaction. Keyword arguments: `invitation` (the new
# `Invitation`) and `invited_by` (the acting `User`).
member_invited = Signal()
