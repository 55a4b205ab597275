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
    # A named person's approval, rejection and removal.
    *[
        path(f"trust/people/<uuid:person_id>/{verb}/", view, name=f"trust_person_{verb}")
        for verb, view in (
            ("approve", views.trusted_person_approve),
            ("reject", views.trusted_person_reject),
            ("remove", views.trusted_person_remove),
        )
    ],
]
