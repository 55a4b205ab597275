"""URLs of the fleet grant pages (in the `delegations` namespace, under /delegations/fleets/)."""

from django.urls import path

from delegations.fleet import views

urlpatterns = [
    path("fleets/", views.fleet_list, name="fleets"),
    path("fleets/request/", views.fleet_request, name="fleet_request"),
    path("fleets/offer/", views.fleet_offer, name="fleet_offer"),
    path("fleets/<uuid:fleet_id>/", views.fleet_detail, name="fleet_detail"),
    path("fleets/<uuid:fleet_id>/status/", views.fleet_status, name="fleet_status"),
    path("fleets/<uuid:fleet_id>/approve/", views.fleet_approve, name="fleet_approve"),
    path("fleets/<uuid:fleet_id>/reject/", views.fleet_reject, name="fleet_reject"),
    path("fleets/<uuid:fleet_id>/revoke/", views.fleet_revoke, name="fleet_revoke"),
    path("fleets/<uuid:fleet_id>/continue/", views.fleet_continue, name="fleet_continue"),
    path(
        "fleets/<uuid:fleet_id>/accounts/<uuid:delegation_id>/retry/",
        views.fleet_account_retry,
        name="fleet_account_retry",
    ),
    path(
        "fleets/<uuid:fleet_id>/accounts/<uuid:delegation_id>/revoke/",
        views.fleet_account_revoke,
        name="fleet_account_revoke",
    ),
]
