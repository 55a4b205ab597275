from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from allauth.account.adapter import get_adapter
from allauth.account.forms import SignupForm
from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.core.validators import MaxLengthValidator
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts import selectors, services
from accounts.models import (
    ACCOUNT_UID_MAX_LENGTH,
    ENTERPRISE_ALIAS_MAX_LENGTH,
    Organisation,
    User,
    validate_account_uid,
    validate_enterprise_alias,
)
from core.time_zones import time_zone_choices

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

NAME_MAX_LENGTH = 150
EMAIL_MAX_LENGTH = 254
ORGANISATION_NAME_MAX_LENGTH = 200


def _name_field(label: StrOrPromise, *, autocomplete: str) -> forms.CharField:
    """A person's first or last name: optional, as long as the user model keeps."""
    return forms.CharField(
        label=label,
        max_length=NAME_MAX_LENGTH,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": autocomplete}),
    )


class OrganisationSignupForm(SignupForm):
    """allauth's sign-up form plus the organisation the new person registers and will admin.

    The person and the organisation are written in one transaction by `OrganisationSignupView`.
    """

    kind = forms.ChoiceField(
        label=_("Your organisation is"),
        choices=[
            (
                Organisation.Kind.OWNER,
                _("A resource owner: it hands the operation of its cloud resources to a partner"),
            ),
            (
                Organisation.Kind.PARTNER,
                _("A partner: it operates a resource owner's cloud resources under contract"),
            ),
        ],
        widget=forms.RadioSelect,
    )
    organisation_name = forms.CharField(
        label=_("Organisation name"),
        max_length=ORGANISATION_NAME_MAX_LENGTH,
        widget=forms.TextInput(attrs={"autocomplete": "organization"}),
    )
    account_uid = forms.CharField(
        label=_("Alibaba Cloud account UID"),
        max_length=ACCOUNT_UID_MAX_LENGTH,
        strip=False,
        help_text=_(
            "Digits only, as shown in the console's account centre (16 digits for real accounts)."
        ),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    enterprise_alias = forms.CharField(
        label=_("Enterprise alias (optional)"),
        max_length=ENTERPRISE_ALIAS_MAX_LENGTH,
        required=False,
        strip=False,
        help_text=_(
            "Lowercase letters, digits and hyphens, as set in RAM. Used in switch-role links."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    first_name = _name_field(_("Your first name"), autocomplete="given-name")
    last_name = _name_field(_("Your last name"), autocomplete="family-name")

    field_order = [
        "kind",
        "organisation_name",
        "account_uid",
        "enterprise_alias",
        "first_name",
        "last_name",
        "email",
        "password1",
        "password2",
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].label = _("Your work email")
        self.fields["email"].max_length = EMAIL_MAX_LENGTH
        self.fields["email"].validators.append(MaxLengthValidator(EMAIL_MAX_LENGTH))
        self.fields["email"].widget.attrs["maxlength"] = str(EMAIL_MAX_LENGTH)
        self.fields["email"].widget.attrs.pop("placeholder", None)
        for name in ("password1", "password2"):
            self.fields[name].widget.attrs.pop("placeholder", None)

    def validate_unique_email(self, value: str) -> str:
        # allauth counts an address as taken when any account has it, even unconfirmed, and
        # (preventing enumeration) would then quietly email the address instead of signing
        # its owner up: anyone could keep an address out by typing it into their account.
        # Taken here is only what `selectors.user_exists_with_email` says is held.
        if selectors.user_exists_with_email(email=value):
            return super().validate_unique_email(value)
        self.account_already_exists = False
        return get_adapter().validate_unique_email(value)

    def clean_account_uid(self) -> str:
        value = self.cleaned_data["account_uid"]
        validate_account_uid(value)
        return value

    def clean_enterprise_alias(self) -> str:
        value = self.cleaned_data["enterprise_alias"]
        if value:
            validate_enterprise_alias(value)
        return value

    def clean_organisation_name(self) -> str:
        value = self.cleaned_data["organisation_name"].strip()
        if not value:
            raise forms.ValidationError(_("Enter the organisation's name."))
        return value

    def clean(self) -> dict:
        cleaned = super().clean()
        kind, uid = cleaned.get("kind"), cleaned.get("account_uid")
        if kind and uid and services.organisation_account_uid_taken(kind=kind, account_uid=uid):
            self.add_error(
                "account_uid",
                _(
                    "An organisation of this kind is already registered for this account. Ask "
                    "its admin to invite you."
                ),
            )
            days = settings.PORTAL_UNCONFIRMED_SIGNUP_DAYS
            self.add_error(
                "account_uid",
                ngettext(
                    "A sign-up whose email address nobody confirms is removed after %(days)d "
                    "day; the account can then be registered again.",
                    "A sign-up whose email address nobody confirms is removed after %(days)d "
                    "days; the account can then be registered again.",
                    days,
                )
                % {"days": days},
            )
        return cleaned

    def signup(self, request: object, user: User) -> None:
        """Called by allauth inside `save()`, after the user row exists."""
        services.organisation_register(
            founder=user,
            name=self.cleaned_data["organisation_name"],
            kind=self.cleaned_data["kind"],
            account_uid=self.cleaned_data["account_uid"],
            enterprise_alias=self.cleaned_data.get("enterprise_alias", ""),
        )
        # The first sign-in comes later, from the confirmation link: the browser's zone and
        # the language chosen on this page are taken now (static/js/time-zone.js fills it).
        services.person_time_zone_default(
            user=user, browser_time_zone=str(self.data.get("time_zone") or "")
        )
        language = getattr(request, "COOKIES", {}).get(settings.LANGUAGE_COOKIE_NAME, "")
        if language in dict(settings.LANGUAGES):
            services.person_language_set(user=user, language=language)


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("Email address"), max_length=EMAIL_MAX_LENGTH)
    role = forms.ChoiceField(label=_("Role"))

    def __init__(self, *args: Any, organisation: Organisation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = organisation.role_choices
        cast(forms.ChoiceField, self.fields["role"]).choices = choices
        # Least privilege by default: the role that is not admin.
        self.fields["role"].initial = next(
            (value for value, _ in choices if value != "admin"), None
        )

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()


class RoleChangeForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"))

    def __init__(self, *args: Any, organisation: Organisation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["role"]).choices = organisation.role_choices


class OrganisationSwitchForm(forms.Form):
    organisation = forms.UUIDField(widget=forms.HiddenInput)


class InvitationSignupForm(forms.Form):
    """A new person accepting an invitation chooses their password (the email is the invited
    address)."""

    first_name = _name_field(_("First name"), autocomplete="given-name")
    last_name = _name_field(_("Last name"), autocomplete="family-name")
    password1 = forms.CharField(
        label=_("Choose a password"),
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        # Lazy: the validators' help in the reader's language, not the one at import time.
        help_text=lazy(password_validation.password_validators_help_text_html, str)(),
    )
    password2 = forms.CharField(
        label=_("Password (again)"),
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, email: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        password1, password2 = cleaned.get("password1"), cleaned.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", _("You must type the same password each time."))
        if password1:
            candidate = User(
                email=self.email,
                first_name=cleaned.get("first_name", ""),
                last_name=cleaned.get("last_name", ""),
            )
            try:
                password_validation.validate_password(password1, user=candidate)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class PersonPreferencesForm(forms.Form):
    """The person's language and time zone."""

    language = forms.ChoiceField(
        label=_("Language"),
        required=False,
        choices=[("", _("As my browser asks")), *settings.LANGUAGES],
        help_text=_("Pages, emails and chat messages to you use this language."),
    )
    time_zone = forms.ChoiceField(
        label=_("Time zone"),
        choices=time_zone_choices,
        help_text=_(
            "Times on every page and in your emails are shown in this zone (UTC on hover); "
            "exports stay in UTC."
        ),
    )
