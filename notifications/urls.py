from django.urls import path

from core.routes import actions
from notifications import views

app_name = "notifications"

urlpatterns = [
    path("", views.index, name="index"),
    *actions("", views.preferences, views.escalation),
    path("channels/new/", views.channel_add, name="channel_add"),
    path("channels/<uuid:channel_id>/", views.channel, name="channel"),
    *actions(
        "channels/<uuid:channel_id>/",
        views.channel_test,
        views.channel_delete,
        views.delivery_retry,
    ),
]
