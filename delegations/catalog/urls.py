"""URLs of the catalogue, allow-list and partner-link pages (in the `delegations` namespace)."""

from django.urls import path

from core.routes import actions
from delegations.catalog import views

urlpatterns = [
    path("catalogue/", views.catalog, name="catalog"),
    path("catalogue/roles/new/", views.catalog_role_create, name="catalog_role_create"),
    *actions(
        "catalogue/roles/<uuid:catalog_role_id>/",
        views.catalog_role_edit,
        views.catalog_role_deactivate,
        views.catalog_role_reactivate,
        views.catalog_role_accounts,
    ),
    path("catalogue/allow-list/", views.allowance_add, name="allowance_add"),
    *actions("catalogue/allow-list/<uuid:allowance_id>/", views.allowance_remove),
    path("partner-links/", views.partner_links, name="partner_links"),
    *actions("partner-links/<uuid:link_id>/", views.partner_link_revoke),
]
