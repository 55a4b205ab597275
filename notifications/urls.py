from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("", views.index, name="index"),
    path("preferences/", views.preferences, name="preferences"),
    path("escalation/", views.escalation, name="escalation"),
    path("channels/new/", views.channel_add, name="channel_add"),
    path("channels/<uuid:channel_id>/", views.channel, name="channel"),
    path("channels/<uuid:channel_id>/test/", views.channel_test, name="channel_test"),
    path("channels/<uuid:channel_id>/delete/", views.channel_delete, name="channel_delete"),
    path("channels/<uuid:channel_id>/retry/", views.delivery_retry, name="delivery_retry"),
]
