"""URLs of the break-glass page (in the `delegations` namespace)."""

from django.urls import path

from delegations.breakglass import views

urlpatterns = [
    path("break-glass/", views.break_glass, name="break_glass"),
    path("break-glass/roles/", views.break_glass_role_set, name="break_glass_role_set"),
    path(
        "break-glass/roles/<uuid:marking_id>/remove/",
        views.break_glass_role_remove,
        name="break_glass_role_remove",
    ),
    path(
        "break-glass/roles/<uuid:marking_id>/activate/",
        views.break_glass_activate,
        name="break_glass_activate",
    ),
    path(
        "break-glass/activations/<uuid:activation_id>/review/",
        views.break_glass_review,
        name="break_glass_review",
    ),
]
