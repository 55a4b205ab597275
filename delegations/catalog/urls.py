"""URLs of the catalogue, allow-list and partner-link pages (in the `delegations` namespace)."""

from django.urls import path

from delegations.catalog import views

urlpatterns = [
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
    path(
        "catalogue/roles/<uuid:catalog_role_id>/accounts/",
        views.catalog_role_accounts,
        name="catalog_role_accounts",
    ),
    path("catalogue/allow-list/", views.allowance_add, name="allowance_add"),
    path(
        "catalogue/allow-list/<uuid:allowance_id>/remove/",
        views.allowance_remove,
        name="allowance_remove",
    ),
    path("partner-links/", views.partner_links, name="partner_links"),
    path(
        "partner-links/<uuid:link_id>/revoke/",
        views.partner_link_revoke,
        name="partner_link_revoke",
    ),
]
