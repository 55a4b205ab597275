"""`/api/v1/`: the REST API, its OpenAPI schema and the locally served docs."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from api import audit_views, extension_views, open_views, schema, views

# `schema` registers the bearer scheme with drf-spectacular when the URLs load.
assert schema
app_name = "api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    path("problems/<slug:slug>", open_views.ProblemTypeView.as_view(), name="problem"),
    path("me/", views.MeView.as_view(), name="me"),
    path("delegations/", views.DelegationListView.as_view(), name="delegations"),
    path("delegations/offer/", views.OfferView.as_view(), name="offer"),
    path(
        "delegations/<uuid:delegation_id>/", views.DelegationDetailView.as_view(), name="delegation"
    ),
    path("delegations/<uuid:delegation_id>/approve/", views.ApproveView.as_view(), name="approve"),
    path("delegations/<uuid:delegation_id>/reject/", views.RejectView.as_view(), name="reject"),
    path("delegations/<uuid:delegation_id>/revoke/", views.RevokeView.as_view(), name="revoke"),
    path(
        "delegations/<uuid:delegation_id>/withdraw/", views.WithdrawView.as_view(), name="withdraw"
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
    path("cloud-accounts/", views.CloudAccountListView.as_view(), name="cloud_accounts"),
    path("access/", views.AccessListView.as_view(), name="access"),
    path("access/<uuid:delegation_id>/", views.AccessDetailView.as_view(), name="access_detail"),
    path(
        "access/<uuid:delegation_id>/credentials/",
        views.CredentialsView.as_view(),
        name="credentials",
    ),
    path(
        "access/<uuid:delegation_id>/console/",
        views.ConsoleView.as_view(),
        name="console",
    ),
    path("audit/events/", audit_views.AuditEventListView.as_view(), name="audit_events"),
    path("audit/access-report/", audit_views.AccessReportView.as_view(), name="access_report"),
    path(
        "delegations/<uuid:delegation_id>/timeline/",
        audit_views.TimelineView.as_view(),
        name="timeline",
    ),
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
    path(
        "delegations/<uuid:delegation_id>/extensions/<uuid:extension_id>/approve/",
        extension_views.ExtensionApproveView.as_view(),
        name="extension_approve",
    ),
    path(
        "delegations/<uuid:delegation_id>/extensions/<uuid:extension_id>/reject/",
        extension_views.ExtensionRejectView.as_view(),
        name="extension_reject",
    ),
    path("device/code/", open_views.DeviceCodeView.as_view(), name="device_code"),
    path("device/token/", open_views.DeviceTokenView.as_view(), name="device_token"),
    # Last: anything else under /api/v1/ answers in problem+json too.
    re_path(r"^.*$", open_views.UnknownPathView.as_view(), name="unknown"),
]
