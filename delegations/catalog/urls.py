"""URLs of the cloud-account, catalogue and allow-list pages (in the `delegations` namespace)."""

from django.urls import path

from delegations.catalog import views

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
    path("catalogue/", views.catalog, name="catalog"),
    path("catalogue/roles/new/", views.catalog_role_create, name="catalog_role_create"),
    path(
        "catalogue/roles/<uuid:catalog_role_id>/edit/",
        views.catalog_role_edit,
        name="catalog_role_edit",
    ),
    path(
        "catalogue/roles/<uuid:catalog_role_id>/deactivate/",
        views.catalog_role_deactivate,
        name="catalog_role_deactivate",
    ),
    path(
        "catalogue/roles/<uuid:catalog_role_id>/reactivate/",
        views.catalog_role_reactivate,
        name="catalog_role_reactivate",
    ),
    path("catalogue/allow-list/", views.allowance_add, name="allowance_add"),
    path(
        "catalogue/allow-list/<uuid:allowance_id>/remove/",
        views.allowance_remove,
        name="allowance_remove",
    ),
]
