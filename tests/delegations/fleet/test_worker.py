"""A fleet grant applied by the real worker entry point (`run_outbox_message`) against cloudsim
through the official SDKs: three owner accounts, one of them faulted (a same-named role the
portal did not create, which it never adopts). The others become active; the faulted one
fails visibly with the cloud's answer; once the cause is gone, retrying that account alone
converges; revoking the fleet takes the partner out of every account."""

from __future__ import annotations

from django.utils import timezone

from cloud import policies
from cloud.client import CloudClient, CloudCredentials
from delegations.connection.services import cloud_account_connect
from delegations.fleet import services as fleet
from delegations.models import CloudAccount, Delegation, FleetGrant, OutboxMessage
from delegations.worker.tasks import run_outbox_message
from tests.fixtures.worker import OwnerWorld, random_uid

Status = Delegation.Status


def connect_another(world: OwnerWorld, name: str) -> tuple[CloudAccount, CloudClient]:
    uid = random_uid()
    created = world.sim.create_account(uid=uid, alias=f"{name}-{uid}")
    key = (created["root"]["access_key_id"], created["root"]["access_key_secret"])
    account = cloud_account_connect(
        organisation=world.organisation,
        connected_by=world.admin,
        account_uid=uid,
        alias="",
        name=name,
        region="cn-hangzhou",
        access_key_id=key[0],
        access_key_secret=key[1],
    )
    client = CloudClient(
        CloudCredentials(*key),
        ram_endpoint=world.sim.endpoint,
        sts_endpoint=world.sim.endpoint,
        protocol="http",
    )
    return account, client


def drain(limit: int = 50) -> None:
    """Run every undone outbox message through the worker's own task, as Celery would, until
    nothing is left (a reconcile marks its role's messages done; an advance its fleet's)."""
    for _ in range(limit):
        message = OutboxMessage.objects.filter(done_at__isnull=True).order_by("id").first()
        if message is None:
            return
        run_outbox_message(message.pk)
        # A message the run left undone (a failure it recorded) is not run again here.
        OutboxMessage.objects.filter(pk=message.pk, done_at__isnull=True).update(
            done_at=timezone.now()
        )
    raise AssertionError("the outbox did not drain")


def by_account(grant: FleetGrant) -> dict[str, Delegation]:
    return {
        d.managed_role.cloud_account.account_uid: d
        for d in Delegation.objects.filter(fleet=grant).select_related(
            "managed_role__cloud_account"
        )
    }


def trusted(client: CloudClient, role_name: str) -> set[str]:
    role = client.get_role(role_name)
    return set() if role is None else set(policies.trust_policy_principals(role.trust_document).ram)


def test_one_faulted_account_fails_the_others_go_active_and_retry_converges(
    owner_world: OwnerWorld,
) -> None:
    staging, staging_client = connect_another(owner_world, "staging")
    test_account, test_client = connect_another(owner_world, "test")
    role = owner_world.catalog_role
    role.offered_in_all_accounts = True
    role.save()
    # The fault: staging already has a role of that name the portal did not make.
    staging_client.create_role(
        role.role_name,
        trust_document=policies.build_trust_policy(
            [policies.account_root_arn(staging.account_uid)]
        ),
        description="made by hand",
        max_session_duration=3600,
    )
    partner = owner_world.partner()
    accounts = [owner_world.cloud_account, staging, test_account]

    grant = fleet.fleet_offer(
        owner=owner_world.organisation,
        offered_by=owner_world.admin,
        partner=partner,
        catalog_role=role,
        accounts=accounts,
        regions=["cn-shanghai", "cn-beijing"],
        reason="Operate the estate",
        ends_at=None,
        with_mfa=True,
        concurrency=2,
        max_errors=1,
    )
    drain()

    rows = by_account(grant)
    principal = policies.account_root_arn(partner.account_uid)
    assert rows[owner_world.uid].status == Status.ACTIVE
    assert rows[test_account.account_uid].status == Status.ACTIVE
    failed = rows[staging.account_uid]
    assert failed.status == Status.FAILED
    assert failed.last_error_code
    # Active only where the cloud agrees.
    assert principal in owner_world.trusted()
    assert principal in trusted(test_client, role.role_name)
    assert principal not in trusted(staging_client, role.role_name)

    # The cause goes away; retrying staging alone converges and touches nothing else.
    staging_client.delete_role(role.role_name)
    others_before = {
        uid: (d.version, d.status) for uid, d in rows.items() if uid != staging.account_uid
    }
    fleet.fleet_account_retry(fleet=grant, delegation=failed, retried_by=owner_world.admin)
    drain()
    rows = by_account(grant)
    assert rows[staging.account_uid].status == Status.ACTIVE
    assert principal in trusted(staging_client, role.role_name)
    assert {
        uid: (d.version, d.status) for uid, d in rows.items() if uid != staging.account_uid
    } == others_before

    # Revoking the fleet takes the partner out of every account.
    fleet.fleet_revoke(fleet=grant, revoked_by=owner_world.admin, reason="Contract ended")
    drain()
    assert {d.status for d in by_account(grant).values()} == {Status.REVOKED}
    for client in (owner_world.client(), staging_client, test_client):
        assert principal not in trusted(client, role.role_name)


def test_max_errors_zero_leaves_the_rest_not_attempted_in_the_cloud(
    owner_world: OwnerWorld,
) -> None:
    staging, staging_client = connect_another(owner_world, "staging")
    test_account, test_client = connect_another(owner_world, "test")
    role = owner_world.catalog_role
    role.offered_in_all_accounts = True
    role.save()
    # The first account applied is the faulted one.
    owner_world.client().create_role(
        role.role_name,
        trust_document=policies.build_trust_policy([policies.account_root_arn(owner_world.uid)]),
        description="made by hand",
        max_session_duration=3600,
    )
    partner = owner_world.partner()
    grant = fleet.fleet_offer(
        owner=owner_world.organisation,
        offered_by=owner_world.admin,
        partner=partner,
        catalog_role=role,
        accounts=[owner_world.cloud_account, staging, test_account],
        regions=["cn-shanghai"],
        reason="Operate the estate",
        ends_at=None,
        with_mfa=True,
        concurrency=1,
        max_errors=0,
    )
    seq = owner_world.last_seq()
    drain()
    grant.refresh_from_db()
    assert grant.stopped_at is not None
    rows = by_account(grant)
    assert rows[owner_world.uid].status == Status.FAILED
    assert rows[staging.account_uid].status == Status.SCHEDULED
    assert rows[test_account.account_uid].status == Status.SCHEDULED
    # Nothing was attempted in the accounts not attempted: not a single call.
    touched = {call.get("account") for call in owner_world.sim.calls(seq)}
    assert staging.account_uid not in touched and test_account.account_uid not in touched
    assert staging_client.get_role(role.role_name) is None
    assert test_client.get_role(role.role_name) is None

    fleet.fleet_continue(fleet=grant, continued_by=owner_world.admin)
    drain()
    rows = by_account(grant)
    assert rows[staging.account_uid].status == Status.ACTIVE
    assert rows[test_account.account_uid].status == Status.ACTIVE


def test_the_reconcile_that_frees_a_slot_starts_the_next_account_itself(
    owner_world: OwnerWorld, django_capture_on_commit_callbacks
) -> None:
    """The task that applied an account starts the fleet's next one before it ends; the advance
    message its transition wrote is done by then and never published, so no second task takes
    a worker slot to wait for the fleet's lock (the dispatcher would publish it had the task
    died)."""
    staging, _client = connect_another(owner_world, "staging")
    role = owner_world.catalog_role
    role.offered_in_all_accounts = True
    role.save()
    grant = fleet.fleet_offer(
        owner=owner_world.organisation,
        offered_by=owner_world.admin,
        partner=owner_world.partner(),
        catalog_role=role,
        accounts=[owner_world.cloud_account, staging],
        regions=["cn-shanghai"],
        reason="Operate the estate",
        ends_at=None,
        with_mfa=True,
        concurrency=1,
        max_errors=0,
    )
    rows = by_account(grant)
    first, second = rows[owner_world.uid], rows[staging.account_uid]
    assert (first.status, second.status) == (Status.APPROVED, Status.SCHEDULED)
    reconcile = OutboxMessage.objects.get(
        kind=OutboxMessage.Kind.RECONCILE_ROLE,
        object_id=str(first.managed_role_id),
        done_at__isnull=True,
    )
    owner_world.published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        run_outbox_message(reconcile.pk)
    rows = by_account(grant)
    assert rows[owner_world.uid].status == Status.ACTIVE
    assert rows[staging.account_uid].status == Status.APPROVED  # its turn, in the same task
    advances = OutboxMessage.objects.filter(
        kind=OutboxMessage.Kind.ADVANCE_FLEET, object_id=str(grant.pk)
    )
    assert advances.exists() and not advances.filter(done_at__isnull=True).exists()
    published = OutboxMessage.objects.filter(pk__in=owner_world.published)
    assert published.filter(kind=OutboxMessage.Kind.RECONCILE_ROLE).exists()
    assert not published.filter(kind=OutboxMessage.Kind.ADVANCE_FLEET).exists()
