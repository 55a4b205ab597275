from django.urls import path

from core.routes import actions
from delegations.approvals import urls as approvals_urls
from delegations.breakglass import urls as breakglass_urls
from delegations.catalog import urls as catalog_urls
from delegations.connection import urls as connection_urls
from delegations.fleet import urls as fleet_urls
from delegations.lifecycle import extension_views, named_people_views, views
from delegations.partner import urls as partner_urls
from delegations.reviews import urls as reviews_urls
from delegations.trust import urls as trust_urls

app_name = "delegations"

urlpatterns = [
    path("", views.delegation_list, name="list"),
    *actions("", views.delegation_request, views.delegation_offer, drop="delegation_"),
    path("roles/", views.role_overview, name="roles"),
    *actions("drift/<uuid:finding_id>/", views.drift_resolve),
    path("<uuid:delegation_id>/", views.delegation_detail, name="detail"),
    *actions(
        "<uuid:delegation_id>/",
        views.delegation_status,
        views.delegation_approve,
        views.delegation_reject,
        views.delegation_revoke,
        views.delegation_retry,
        views.delegation_withdraw,
        extension_views.delegation_extend,
        drop="delegation_",
    ),
    # An approver takes back their own approval (not the partner's "withdraw" above).
    path(
        "<uuid:delegation_id>/approval/withdraw/",
        views.delegation_approval_withdraw,
        name="approval_withdraw",
    ),
    *actions(
        "<uuid:delegation_id>/extensions/<uuid:extension_id>/", extension_views.extension_decide
    ),
    # An approver takes back their own approval of an extension.
    *actions(
        "<uuid:delegation_id>/extensions/<uuid:extension_id>/approval/",
        extension_views.extension_approval_withdraw,
    ),
    # The owner's decision on a named person, posted from the trust page (trust_urls below):
    # the lifecycle's, which applies the delegation's approval rules.
    *[
        path(f"trust/people/<uuid:person_id>/{verb}/", view, name=f"trust_person_{verb}")
        for verb, view in (
            ("approve", named_people_views.trusted_person_approve),
            ("reject", named_people_views.trusted_person_reject),
        )
    ],
]

# The sub-areas' pages, in this same namespace.
for area_urls in (
    connection_urls,  # the cloud account
    catalog_urls,  # the catalogue, the allow-list and the partner links
    partner_urls,  # the partner side: staff, their access, credentials, the owner's view of them
    trust_urls,  # whom a delegation's trust policy names
    approvals_urls,  # approval rules: approver groups and quorum
    breakglass_urls,  # break-glass: emergency roles, activations and their review
    reviews_urls,  # access reviews across the company boundary
    fleet_urls,  # fleet grants: one role across several owner accounts x regions
):
    urlpatterns += area_urls.urlpatterns
