"""factory_boy factories for organisations and people."""

import factory
from allauth.account.models import EmailAddress

from accounts.models import Membership, Organisation, User
from accounts.services import organisation_register

DEFAULT_PASSWORD = "Quiet-harbour-lantern-42"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.test")
    first_name = factory.Sequence(lambda n: f"Person{n}")
    last_name = "Example"
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def verified_email(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            self.save()
            EmailAddress.objects.create(user=self, email=self.email, verified=True, primary=True)


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation

    name = factory.Sequence(lambda n: f"Organisation {n}")
    slug = factory.Sequence(lambda n: f"organisation-{n}")
    kind = Organisation.Kind.OWNER
    account_uid = factory.Sequence(lambda n: f"{5000000000000000 + n}")
    enterprise_alias = ""


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organisation = factory.SubFactory(OrganisationFactory)
    role = Membership.Role.ADMIN


def unconfirmed_signup(
    *, kind: str, account_uid: str, email: str = "founder@unconfirmed.example"
) -> Organisation:
    """An organisation whose founder signed up and never confirmed their email address (what
    the sign-up form leaves behind until the confirmation link is followed)."""
    founder = User.objects.create_user(email=email, password=DEFAULT_PASSWORD)
    EmailAddress.objects.create(user=founder, email=email, verified=False, primary=True)
    return organisation_register(
        founder=founder, name=f"Unconfirmed {account_uid}", kind=kind, account_uid=account_uid
    )
