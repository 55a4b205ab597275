"""The demo's partner activity, portal side: company-b's admin links Alice and Bob to their RAM
users in company-b's account, which is how the portal names the people behind calls made
from those RAM users' role sessions (a console switch, or AssumeRole with their own keys).

cloudsim's demo trail (`--demo-activity`, which `make run` passes) holds their calls on
ecs-viewer; beat ingests them once the worker has made the demo delegation active, and the
delegation's Activity page then shows both people, "used" in the access report, the alerts
(a denied call, a write under a read-only role) and a right-sizing proposal. Idempotent."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import Organisation, User
from delegations.models import StaffRamUserLink
from delegations.partner.services import staff_link_ram_user
from demo.people import first_admin

DEMO_LINKS = (("alice@company-b.example", "Alice"), ("bob@company-b.example", "Bob"))


def demo_activity_seed(*, partner: Organisation) -> list[str]:
    """Lines to print; never raises for what the demo cannot do (it says so instead)."""
    admin = first_admin(partner)
    if admin is None:
        return ["Note: company-b has no admin; the demo's RAM user links were skipped."]
    linked = []
    for email, ram_user in DEMO_LINKS:
        user = User.objects.filter(email=email).first()
        if user is None:
            continue
        if StaffRamUserLink.objects.filter(organisation=partner, user=user).exists():
            linked.append(ram_user)
            continue
        try:
            staff_link_ram_user(
                organisation=partner, user=user, ram_user_name=ram_user, linked_by=admin
            )
        except (ValidationError, PermissionDenied) as error:
            why = " ".join(getattr(error, "messages", [str(error)]))
            return [f"Note: linking {email} to the RAM user {ram_user} was skipped: {why}"]
        linked.append(ram_user)
    if not linked:
        return []
    return [
        f"company-b's staff linked to their RAM users ({', '.join(linked)}): the demo "
        "delegation's Activity page names them (Audit → the ecs-viewer delegation → Activity, "
        "about a minute after start)."
    ]
