"""The partner side of a delegation (issue 6).

- `services`: partner admins link staff to RAM users, assign and unassign them (optionally
  with a session policy), staff make and revoke credentials-URI keys, owners cut a role off;
  plus the outbox hook the lifecycle calls when a delegation becomes or stops being active.
- `credentials`: STS credentials for a person (AssumeRole under the delegation's row lock) and
  the formats they are shown in.
- `apply`: the worker that keeps one `portal-assume-<user>` policy per RAM user in the
  partner's account equal to what the ledger says, with the owner side's lease, outbox,
  CloudCall and retry code.
- `selectors`, `forms`, `views`, `urls`, `tasks`: the usual thin layers.
"""
