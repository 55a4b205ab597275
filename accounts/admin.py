"""Operators can look, not change: every change to organisations and people goes through
`accounts.services`, which writes the audit log. The admin has no side door around it."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from accounts.models import Invitation, Membership, Organisation, User


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
