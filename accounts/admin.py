"""Operators can look, not change: every change to organisations and people goes through
`accounts.services` (or allauth's own flows for a person's addresses, second factors and
sessions), which keep the portal's rules and write the audit log. The admin has no side door
around them; the one thing it may do is end a signed-in session, through the service."""

from typing import Any, cast

from allauth.account.admin import EmailAddressAdmin as AllauthEmailAddressAdmin
from allauth.account.models import EmailAddress
from allauth.mfa.admin import AuthenticatorAdmin as AllauthAuthenticatorAdmin
from allauth.mfa.models import Authenticator
from allauth.usersessions.admin import UserSessionAdmin as AllauthUserSessionAdmin
from allauth.usersessions.models import UserSession
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from accounts import services
from accounts.models import Invitation, Membership, Organisation, User

_MEMBERS_PAGE = _(
    "Read-only. People join by invitation and leave on their organisation's Members page, "
    "which keeps the last admin, ends their sessions, revokes their access and records it in "
    "the audit log."
)


class ReadOnlyAdmin(admin.ModelAdmin):
    # Shown above the list, so an operator looking for "Delete" learns where the change is made.
    notice: Any = _MEMBERS_PAGE

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return super().changelist_view(
            request, extra_context={"subtitle": self.notice, **(extra_context or {})}
        )


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Organisation)
class OrganisationAdmin(ReadOnlyAdmin):
    list_display = ("name", "slug", "kind", "account_uid", "enterprise_alias", "created_at")
    list_filter = ("kind",)
    search_fields = ("name", "slug", "account_uid", "enterprise_alias")
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ("user", "organisation", "role", "created_at")
    list_filter = ("role", "organisation__kind")
    search_fields = ("user__email", "organisation__name")


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ("email", "organisation", "role", "sent_at", "expires_at", "status")
    search_fields = ("email", "organisation__name")
    exclude = ("token_hash",)


@admin.register(User)
class UserAdmin(ReadOnlyAdmin):
    list_display = ("email", "first_name", "last_name", "is_active", "is_staff", "date_joined")
    search_fields = ("email", "first_name", "last_name")
    exclude = ("password", "user_permissions", "groups")


# allauth registers editable admins for its models; they are replaced by read-only ones with
# the same columns. (Importing allauth's admin modules above registered them whatever order
# the admin discovers the apps in.)
for _model in (EmailAddress, Authenticator, UserSession):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(EmailAddress)
class EmailAddressAdmin(ReadOnlyAdmin, AllauthEmailAddressAdmin):
    """A verified address is what lets a person accept an invitation sent to it: only its
    owner confirms one, by the emailed link."""

    actions: Any = ()
    notice = _(
        "Read-only. People add, confirm and remove their own addresses on their Email "
        "addresses page."
    )


@admin.register(Authenticator)
class AuthenticatorAdmin(ReadOnlyAdmin, AllauthAuthenticatorAdmin):
    """Turning a second factor off goes through allauth's flow (recovery codes go with the
    app), the admins-keep-MFA rule and the audit log: never a row deleted here."""

    # The sealed TOTP key and recovery-code seed.
    exclude = ("data",)
    notice = _(
        "Read-only. People turn two-factor authentication on and off on their own "
        "Two-factor authentication page; organisation admins must keep it."
    )


@admin.register(UserSession)
class UserSessionAdmin(ReadOnlyAdmin, AllauthUserSessionAdmin):
    """Deleting a session ends it (`accounts.services.user_session_end`)."""

    exclude = ("data",)
    notice = _(
        "Deleting a session here signs that browser out at once and is recorded in the audit log."
    )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return admin.ModelAdmin.has_delete_permission(self, request, obj)

    def delete_model(self, request: HttpRequest, obj: UserSession) -> None:
        services.user_session_end(session=obj, ended_by=cast(User, request.user))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[UserSession]) -> None:
        for session in queryset:
            services.user_session_end(session=session, ended_by=cast(User, request.user))
