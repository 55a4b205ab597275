"""factory_boy factories for the delegation models."""

from collections.abc import Sequence

import factory

from accounts.models import User
from delegations.models import (
    CatalogRole,
    CloudAccount,
    Delegation,
    FleetGrant,
    ManagedRole,
    PartnerAllowance,
)
from tests.factories import OrganisationFactory, UserFactory


class CloudAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CloudAccount

    organisation = factory.SubFactory(OrganisationFactory)
    account_uid = factory.LazyAttribute(lambda o: o.organisation.account_uid)
    alias = factory.LazyAttribute(lambda o: o.organisation.enterprise_alias)
    region = "cn-hangzhou"
    access_key_id = factory.Sequence(lambda n: f"LTAI5tTestKey{n:08d}")
    # Stand-in ciphertext: these tests never decrypt it (the connect code owns the crypto).
    secret_ciphertext = "not-a-real-ciphertext"
    secret_fingerprint = "sha256:test"


class CatalogRoleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CatalogRole

    cloud_account = factory.SubFactory(CloudAccountFactory)
    organisation = factory.LazyAttribute(lambda o: o.cloud_account.organisation)
    role_name = factory.Sequence(lambda n: f"role-{n}")
    description = "Operate the ECS fleet"
    policies = factory.LazyFunction(lambda: [{"type": "System", "name": "AliyunECSFullAccess"}])
    max_session_duration = 3600


class PartnerAllowanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PartnerAllowance

    organisation = factory.SubFactory(OrganisationFactory)
    partner_account_uid = "12345678"
    label = "Partner"


class ManagedRoleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ManagedRole

    cloud_account = factory.SubFactory(CloudAccountFactory)
    role_name = factory.Sequence(lambda n: f"role-{n}")


class DelegationFactory(factory.django.DjangoModelFactory):
    """A delegation in any status without going through the services (for read-side tests);
    lifecycle tests create them with the services."""

    class Meta:
        model = Delegation

    catalog_role = factory.SubFactory(CatalogRoleFactory)
    owner = factory.LazyAttribute(lambda o: o.catalog_role.organisation)
    partner = factory.SubFactory(OrganisationFactory, kind="partner")
    partner_account_uid = factory.LazyAttribute(lambda o: o.partner.account_uid)
    managed_role = factory.LazyAttribute(
        lambda o: ManagedRole.objects.get_or_create(
            cloud_account=o.catalog_role.cloud_account, role_name=o.catalog_role.role_name
        )[0]
    )
    requested_by = factory.SubFactory(UserFactory)
    reason = "Run the nightly patching"
    status = Delegation.Status.REQUESTED


def fleet_of(
    delegation: Delegation,
    *,
    regions: Sequence[str] = ("cn-hangzhou",),
    requested_by: User | None = None,
) -> FleetGrant:
    """A fleet grant that `delegation` is (now) one account of, made without the fleet's
    services: for what a fleet's account does elsewhere, not for the fleet itself."""
    fleet = FleetGrant.objects.create(
        owner=delegation.owner,
        partner=delegation.partner,
        catalog_role=delegation.catalog_role,
        requested_by=requested_by or delegation.requested_by,
        reason="Fleet",
        regions=list(regions),
    )
    Delegation.objects.filter(pk=delegation.pk).update(fleet=fleet)
    return fleet
