"""Account UID and enterprise alias rules, at the model and on the sign-up form."""

import pytest
from django.core.exceptions import ValidationError

from accounts.forms import OrganisationSignupForm
from accounts.models import validate_account_uid, validate_enterprise_alias

# Built from code points so the source stays plain ASCII.
FULLWIDTH_UID = "".join(chr(0xFF10 + int(d)) for d in "11223344")

GOOD_UIDS = ["11223344", "12345678", "1234567890123456", "0", "9" * 32]
BAD_UIDS = [
    "",
    " 11223344",
    "11223344 ",
    "1122 3344",
    "11223344\n",
    "+11223344",
    "-11223344",
    "1e8",
    "1.5",
    "0x1F",
    FULLWIDTH_UID,
    "١٢٣٤٥٦٧٨",  # Arabic-Indic digits
    "²³",  # superscripts are "digits" to str.isdigit()
    "acs:ram::11223344:root",
    "acs:ram::1234567890123456:role/ops",
    "9" * 33,
    "1122_3344",
    "11223344\x00",
]


@pytest.mark.parametrize("uid", GOOD_UIDS)
def test_account_uid_accepts_ascii_digits(uid: str) -> None:
    validate_account_uid(uid)


@pytest.mark.parametrize("uid", BAD_UIDS)
def test_account_uid_rejects_everything_else(uid: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_account_uid(uid)
    assert "digits 0-9 only" in caught.value.messages[0]


@pytest.mark.parametrize("alias", ["company-a", "abc", "a1-b2-c3", "x" * 32, "0-0"])
def test_enterprise_alias_accepts_lowercase_digits_and_hyphens(alias: str) -> None:
    validate_enterprise_alias(alias)


@pytest.mark.parametrize(
    "alias",
    [
        "Company-A",
        "ab",
        "-company",
        "company-",
        "com pany",
        "company_a",
        "x" * 33,
        "\uff43\uff4f\uff4d",
        "a.b",
    ],
)
def test_enterprise_alias_rejects_other_forms(alias: str) -> None:
    with pytest.raises(ValidationError):
        validate_enterprise_alias(alias)


def _signup_data(**overrides: str) -> dict:
    data = {
        "kind": "owner",
        "organisation_name": "Acme Cloud Owner",
        "account_uid": "1234567890123456",
        "enterprise_alias": "acme",
        "first_name": "Ada",
        "last_name": "Admin",
        "email": "ada@acme.example",
        "password1": "Quiet-harbour-lantern-42",
        "password2": "Quiet-harbour-lantern-42",
    }
    data.update(overrides)
    return data


@pytest.mark.django_db
@pytest.mark.parametrize("uid", BAD_UIDS)
def test_signup_form_reports_bad_account_uids_on_the_field(uid: str) -> None:
    form = OrganisationSignupForm(data=_signup_data(account_uid=uid))
    assert not form.is_valid()
    assert "account_uid" in form.errors


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "superuser"),
        ("kind", ""),
        ("organisation_name", ""),
        ("organisation_name", "   "),
        ("organisation_name", "x" * 201),
        ("enterprise_alias", "Not An Alias"),
        ("email", "not-an-email"),
        ("email", "a" * 250 + "@example.com"),
        ("password2", "something-else-entirely"),
        ("first_name", "x" * 151),
    ],
)
def test_signup_form_rejects_bad_fields(field: str, value: str) -> None:
    form = OrganisationSignupForm(data=_signup_data(**{field: value}))
    assert not form.is_valid()
    expected_field = "password2" if field == "password2" else field
    assert expected_field in form.errors


@pytest.mark.django_db
def test_signup_form_accepts_a_valid_registration() -> None:
    form = OrganisationSignupForm(data=_signup_data())
    assert form.is_valid(), form.errors


@pytest.mark.django_db
def test_signup_form_accepts_a_missing_alias() -> None:
    form = OrganisationSignupForm(data=_signup_data(enterprise_alias=""))
    assert form.is_valid(), form.errors
