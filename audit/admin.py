from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the log is append-only, so the admin can list and open events, nothing else."""

    list_display = (
        "sequence",
        "occurred_at",
        "action",
        "outcome",
        "actor_label",
        "actor_organisation_label",
        "target_type",
        "target_label",
        "source_ip",
    )
    list_filter = ("outcome", "action", "source", "target_type")
    search_fields = ("action", "actor_label", "target_label", "target_id", "request_id")
    date_hierarchy = "occurred_at"
    ordering = ("-sequence",)
    show_full_result_count = False
    list_per_page = 50
    readonly_fields = [*(field.name for field in AuditEvent._meta.fields), "visible_to"]

    @admin.display(description="Visible to organisations")
    def visible_to(self, event: AuditEvent) -> str:
        return ", ".join(
            str(org_id) for org_id in event.scopes.values_list("organisation_id", flat=True)
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
