"""URLs of the cloud-account pages (in the `delegations` namespace, under /delegations/)."""

from django.urls import path

from delegations.connection import views

urlpatterns = [
    path("cloud-account/", views.cloud_account, name="cloud_account"),
    path("cloud-account/connect/", views.cloud_account_connect, name="cloud_account_connect"),
    path("cloud-account/replace/", views.cloud_account_replace, name="cloud_account_replace"),
    path("cloud-account/check/", views.cloud_account_verify, name="cloud_account_verify"),
    path(
        "cloud-account/disconnect/",
        views.cloud_account_disconnect,
        name="cloud_account_disconnect",
    ),
    # An owner's further accounts (issue 12), each with its own key.
    path("cloud-account/add/", views.cloud_account_add, name="cloud_account_add"),
    path(
        "cloud-account/<uuid:cloud_account_id>/replace/",
        views.cloud_account_replace,
        name="cloud_account_replace_one",
    ),
    path(
        "cloud-account/<uuid:cloud_account_id>/check/",
        views.cloud_account_verify,
        name="cloud_account_verify_one",
    ),
    path(
        "cloud-account/<uuid:cloud_account_id>/disconnect/",
        views.cloud_account_disconnect,
        name="cloud_account_disconnect_one",
    ),
    path(
        "cloud-account/<uuid:cloud_account_id>/primary/",
        views.cloud_account_make_primary,
        name="cloud_account_make_primary",
    ),
]
