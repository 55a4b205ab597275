from django.urls import path

from delegations.approvals import urls as approvals_urls
from delegations.breakglass import urls as breakglass_urls
from delegations.catalog import urls as catalog_urls
from delegations.connection import urls as connection_urls
from delegations.fleet import urls as fleet_urls
from delegations.lifecycle import extension_views, views
from delegations.partner import urls as partner_urls
from delegations.reviews import urls as reviews_urls
from delegations.trust import urls as trust_urls

app_name = "delegations"

urlpatterns = [
    path("", views.delegation_list, name="list"),
    path("request/", views.delegation_request, name="request"),
    path("offer/", views.delegation_offer, name="offer"),
    path("roles/", views.role_overview, name="roles"),
    path("drift/<uuid:finding_id>/resolve/", views.drift_resolve, name="drift_resolve"),
    path("<uuid:delegation_id>/", views.delegation_detail, name="detail"),
    path("<uuid:delegation_id>/status/", views.delegation_status, name="status"),
    path("<uuid:delegation_id>/approve/", views.delegation_approve, name="approve"),
    path("<uuid:delegation_id>/reject/", views.delegation_reject, name="reject"),
    path("<uuid:delegation_id>/revoke/", views.delegation_revoke, name="revoke"),
    path("<uuid:delegation_id>/retry/", views.delegation_retry, name="retry"),
    path("<uuid:delegation_id>/withdraw/", views.delegation_withdraw, name="withdraw"),
    # Extensions (issue 14).
    path("<uuid:delegation_id>/extend/", extension_views.delegation_extend, name="extend"),
    path(
        "<uuid:delegation_id>/extensions/<uuid:extension_id>/decide/",
        extension_views.extension_decide,
        name="extension_decide",
    ),
]

# The cloud account.
urlpatterns += connection_urls.urlpatterns
# The catalogue, the allow-list and the partner links.
urlpatterns += catalog_urls.urlpatterns
# The partner side: staff, their access, credentials, and the owner's view of them.
urlpatterns += partner_urls.urlpatterns
# Whom a delegation's trust policy names (issue 11).
urlpatterns += trust_urls.urlpatterns
# Approval rules: approver groups and quorum (issue 14).
urlpatterns += approvals_urls.urlpatterns
# Break-glass: emergency roles, activations and their review (issue 14).
urlpatterns += breakglass_urls.urlpatterns
# Access reviews across the company boundary (issue 14).
urlpatterns += reviews_urls.urlpatterns
# Fleet grants: one role across several owner accounts x regions (issue 12).
urlpatterns += fleet_urls.urlpatterns
