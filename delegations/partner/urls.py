"""URLs of the partner-side pages (in the `delegations` namespace, under /delegations/)."""

from django.urls import path

from core.routes import actions
from delegations.partner import views

urlpatterns = [
    # Partner admins.
    path("staff/", views.staff_overview, name="staff"),
    *actions("staff/", views.staff_link),
    *actions("staff/links/<uuid:link_id>/", views.staff_unlink),
    path("<uuid:delegation_id>/staff/", views.delegation_staff, name="delegation_staff"),
    *actions("<uuid:delegation_id>/staff/", views.staff_assign),
    *actions("<uuid:delegation_id>/staff/<uuid:assignment_id>/", views.staff_unassign),
    path(
        "<uuid:delegation_id>/staff/<uuid:assignment_id>/session-policy/",
        views.staff_session_policy,
        name="staff_session_policy",
    ),
    # Staff.
    path("my-access/", views.my_access, name="my_access"),
    path(
        "my-access/<uuid:delegation_id>/credentials/", views.credentials_get, name="credentials_get"
    ),
    path("my-access/<uuid:delegation_id>/credentials-uri/", views.uri_keys, name="uri_keys"),
    path("my-access/<uuid:delegation_id>/console/", views.console_open, name="console_open"),
    *actions("my-access/<uuid:delegation_id>/credentials-uri/<uuid:key_id>/", views.uri_key_revoke),
    # The credentials URI itself (no session: the key is the authentication).
    path("credentials-uri/<str:key>", views.credentials_uri, name="credentials_uri"),
    # Owners (and the partner's admins, read-only): who took credentials, the cut-off.
    path("<uuid:delegation_id>/credentials/", views.delegation_issuances, name="issuances"),
    path("<uuid:delegation_id>/cut-off/", views.delegation_cut_off, name="cut_off"),
    *actions("<uuid:delegation_id>/cut-off/<uuid:cut_off_id>/", views.cut_off_lift),
]
