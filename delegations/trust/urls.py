from django.urls import path

from delegations.trust import views

urlpatterns = [
    path("<uuid:delegation_id>/trust/", views.trust_page, name="trust"),
    path("<uuid:delegation_id>/trust/scope/", views.trust_scope_change, name="trust_scope"),
    path(
        "<uuid:delegation_id>/trust/people/",
        views.trusted_person_propose,
        name="trust_propose",
    ),
    path(
        "<uuid:delegation_id>/trust/external-id/",
        views.external_id_reveal,
        name="trust_external_id",
    ),
    # A named person's removal (approving and refusing one: `delegations.urls`, the
    # lifecycle's, which applies the approval rules).
    path(
        "trust/people/<uuid:person_id>/remove/",
        views.trusted_person_remove,
        name="trust_person_remove",
    ),
]
