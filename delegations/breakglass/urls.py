"""URLs of the break-glass page (in the `delegations` namespace)."""

from django.urls import path

from core.routes import actions
from delegations.breakglass import views

urlpatterns = [
    path("break-glass/", views.break_glass, name="break_glass"),
    path("break-glass/roles/", views.break_glass_role_set, name="break_glass_role_set"),
    *actions(
        "break-glass/roles/<uuid:marking_id>/",
        views.break_glass_role_remove,
        views.break_glass_activate,
    ),
    *actions("break-glass/activations/<uuid:activation_id>/", views.break_glass_review),
]
