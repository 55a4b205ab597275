"""What every process of the portal connects and registers once Django has loaded the apps
(`DelegationsConfig.ready` imports this module, because the receivers need the models)."""

from accounts.hooks import admin_leaving, member_invited, member_joining, member_removed

# The trust page asks the lifecycle who decides on named people (the approval rules' answer),
# through the reader `lifecycle.named_people` registers when it is imported.
# The allow-list asks the approval rules whether a partner may join it (a quorum it would
# leave out of reach), through the check `approvals.services` registers when it is imported.
from delegations.approvals import services as approval_services  # noqa: F401

# Four eyes applies emergency-role proposals through the appliers this module registers.
from delegations.breakglass import proposals  # noqa: F401
from delegations.lifecycle import named_people  # noqa: F401
from delegations.partner.receivers import (
    on_admin_leaving,
    on_member_invited,
    on_member_joining,
    on_member_removed,
)

# The worker's stored sentences (core.i18n.stored_message) are read on pages, where nothing
# else imports the worker: importing its modules registers them in every process.
from delegations.worker import engine, partner_policy, role_ops  # noqa: F401


def connect_receivers() -> None:
    member_removed.connect(on_member_removed, dispatch_uid="delegations.partner.member_removed")
    admin_leaving.connect(on_admin_leaving, dispatch_uid="delegations.approvals.admin_leaving")
    member_invited.connect(on_member_invited, dispatch_uid="delegations.member_invited")
    member_joining.connect(on_member_joining, dispatch_uid="delegations.approvals.member_joining")
