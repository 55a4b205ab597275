"""URLs of the partner-side pages (in the `delegations` namespace, under /delegations/)."""

from django.urls import path

from delegations.partner import views

urlpatterns = [
    # Partner admins.
    path("staff/", views.staff_overview, name="staff"),
    path("staff/link/", views.staff_link, name="staff_link"),
    path("staff/links/<uuid:link_id>/unlink/", views.staff_unlink, name="staff_unlink"),
    path("<uuid:delegation_id>/staff/", views.delegation_staff, name="delegation_staff"),
    path("<uuid:delegation_id>/staff/assign/", views.staff_assign, name="staff_assign"),
    path(
        "<uuid:delegation_id>/staff/<uuid:assignment_id>/unassign/",
        views.staff_unassign,
        name="staff_unassign",
    ),
    path(
        "<uuid:delegation_id>/staff/<uuid:assignment_id>/session-policy/",
        views.staff_session_policy,
        name="staff_session_policy",
    ),
    # Staff.
    path("my-access/", views.my_access, name="my_access"),
    path(
        "my-access/<uuid:delegation_id>/credentials/",
        views.credentials_get,
        name="credentials_get",
    ),
    path("my-access/<uuid:delegation_id>/credentials-uri/", views.uri_keys, name="uri_keys"),
    path("my-access/<uuid:delegation_id>/console/", views.console_open, name="console_open"),
    path(
        "my-access/<uuid:delegation_id>/credentials-uri/<uuid:key_id>/revoke/",
        views.uri_key_revoke,
        name="uri_key_revoke",
    ),
    # The credentials URI itself (no session: the key is the authentication).
    path("credentials-uri/<str:key>", views.credentials_uri, name="credentials_uri"),
    # Owners (and the partner's admins, read-only): who took credentials, the cut-off.
    path("<uuid:delegation_id>/credentials/", views.delegation_issuances, name="issuances"),
    path("<uuid:delegation_id>/cut-off/", views.delegation_cut_off, name="cut_off"),
    path(
        "<uuid:delegation_id>/cut-off/<uuid:cut_off_id>/lift/",
        views.cut_off_lift,
        name="cut_off_lift",
    ),
]
