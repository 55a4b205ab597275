"""The partner side of a delegation: what a partner company does with access it was granted.

- `services`: partner admins link staff to RAM users, assign and unassign them (optionally
  with a session policy), staff make and revoke credentials-URI keys, owners cut a role off.
- `credentials`: STS credentials for a person (AssumeRole under the delegation's row lock) and
  the formats they are shown in.
- `receivers`: what happens here when accounts removes a member.
- `selectors`, `forms`, `views`, `urls`: the usual thin layers.

The worker that keeps each RAM user's `portal-assume-<user>` policy equal to the ledger is a
subject of the one reconcile engine (`delegations.worker.partner_policy`); which roles a RAM
user may assume is ground-floor knowledge (`delegations.partner_access`).
"""
