"""URLs of the fleet grant pages (in the `delegations` namespace, under /delegations/fleets/)."""

from django.urls import path

from core.routes import actions
from delegations.fleet import views

urlpatterns = [
    path("fleets/", views.fleet_list, name="fleets"),
    *actions("fleets/", views.fleet_request, views.fleet_offer),
    path("fleets/<uuid:fleet_id>/", views.fleet_detail, name="fleet_detail"),
    *actions(
        "fleets/<uuid:fleet_id>/",
        views.fleet_status,
        views.fleet_approve,
        views.fleet_reject,
        views.fleet_revoke,
        views.fleet_continue,
    ),
    # An approver takes back their own approval of the fleet.
    *actions("fleets/<uuid:fleet_id>/approval/", views.fleet_approval_withdraw),
    *actions(
        "fleets/<uuid:fleet_id>/accounts/<uuid:delegation_id>/",
        views.fleet_account_retry,
        views.fleet_account_revoke,
    ),
]
