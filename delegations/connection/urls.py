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
]
