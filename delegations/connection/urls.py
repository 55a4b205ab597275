"""URLs of the cloud-account pages (in the `delegations` namespace, under /delegations/)."""

from django.urls import path

from core.routes import actions
from delegations.connection import views

urlpatterns = [
    path("cloud-account/", views.cloud_account, name="cloud_account"),
    path("cloud-account/check/", views.cloud_account_verify, name="cloud_account_verify"),
    *actions(
        "cloud-account/",
        views.cloud_account_connect,
        views.cloud_account_replace,
        views.cloud_account_disconnect,
    ),
    # An owner's further accounts, each with its own key: the same pages for one of them.
    *actions("cloud-account/", views.cloud_account_add),
    *[
        path(f"cloud-account/<uuid:cloud_account_id>/{route}", view, name=f"{view.__name__}_one")
        for route, view in [
            ("replace/", views.cloud_account_replace),
            ("check/", views.cloud_account_verify),
            ("disconnect/", views.cloud_account_disconnect),
        ]
    ],
    *actions("cloud-account/<uuid:cloud_account_id>/", views.cloud_account_make_primary),
]
