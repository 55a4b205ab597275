"""`/api/v1/`: the REST API, its OpenAPI schema and the locally served docs."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from api import audit_views, extension_views, open_views, schema, views
from core.routes import actions

# `schema` registers the bearer scheme with drf-spectacular when the URLs load.
assert schema
app_name = "api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    path("problems/<slug:slug>", open_views.ProblemTypeView.as_view(), name="problem"),
    path("me/", views.MeView.as_view(), name="me"),
    path("delegations/", views.DelegationListView.as_view(), name="delegations"),
    *actions("delegations/", views.OfferView.as_view()),
    path(
        "delegations/<uuid:delegation_id>/", views.DelegationDetailView.as_view(), name="delegation"
    ),
    *actions(
        "delegations/<uuid:delegation_id>/",
        views.ApproveView.as_view(),
        views.RejectView.as_view(),
        views.RevokeView.as_view(),
        views.WithdrawView.as_view(),
    ),
    # An approver takes back their own approval (not the partner's "withdraw" above).
    path(
        "delegations/<uuid:delegation_id>/approval/withdraw/",
        views.ApprovalWithdrawView.as_view(),
        name="approval_withdraw",
    ),
    path(
        "delegations/<uuid:delegation_id>/assignments/",
        views.AssignmentListView.as_view(),
        name="assignments",
    ),
    path(
        "delegations/<uuid:delegation_id>/assignments/<uuid:assignment_id>/",
        views.AssignmentDetailView.as_view(),
        name="assignment",
    ),
    path("assignments/", views.StaffAssignmentListView.as_view(), name="staff_assignments"),
    path("catalog-roles/", views.CatalogRoleListView.as_view(), name="catalog_roles"),
    path(
        "owners/<slug:owner>/catalog-roles/",
        views.OwnerCatalogRoleListView.as_view(),
        name="owner_catalog_roles",
    ),
    path("cloud-accounts/", views.CloudAccountListView.as_view(), name="cloud_accounts"),
    path("access/", views.AccessListView.as_view(), name="access"),
    path("access/<uuid:delegation_id>/", views.AccessDetailView.as_view(), name="access_detail"),
    *actions(
        "access/<uuid:delegation_id>/", views.CredentialsView.as_view(), views.ConsoleView.as_view()
    ),
    path("audit/events/", audit_views.AuditEventListView.as_view(), name="audit_events"),
    path("audit/access-report/", audit_views.AccessReportView.as_view(), name="access_report"),
    *actions("delegations/<uuid:delegation_id>/", audit_views.TimelineView.as_view()),
    # Extensions: the partner asks for more time, the owner's approvers decide.
    path(
        "delegations/<uuid:delegation_id>/extensions/",
        extension_views.ExtensionListView.as_view(),
        name="extensions",
    ),
    path(
        "delegations/<uuid:delegation_id>/extensions/<uuid:extension_id>/",
        extension_views.ExtensionDetailView.as_view(),
        name="extension",
    ),
    *actions(
        "delegations/<uuid:delegation_id>/extensions/<uuid:extension_id>/",
        extension_views.ExtensionApproveView.as_view(),
        extension_views.ExtensionRejectView.as_view(),
    ),
    # An approver takes back their own approval of an extension.
    *actions(
        "delegations/<uuid:delegation_id>/extensions/<uuid:extension_id>/approval/",
        extension_views.ExtensionApprovalWithdrawView.as_view(),
    ),
    path("device/code/", open_views.DeviceCodeView.as_view(), name="device_code"),
    path("device/token/", open_views.DeviceTokenView.as_view(), name="device_token"),
    # Last: anything else under /api/v1/ answers in problem+json too. Any character, not `.`:
    # a path may hold a line break (%0A), which `.` does not match, and Django matches the
    # whole path (an inline (?s) flag cannot be reversed).
    re_path(r"^[\s\S]*$", open_views.UnknownPathView.as_view(), name="unknown"),
]
