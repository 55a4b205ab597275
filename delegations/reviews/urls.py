"""URLs of the access-review pages (in the `delegations` namespace)."""

from django.urls import path

from delegations.reviews import views

urlpatterns = [
    path("access-reviews/", views.access_reviews, name="access_reviews"),
    path("access-reviews/schedule/", views.access_review_schedule, name="access_review_schedule"),
    path("access-reviews/start/", views.access_review_start, name="access_review_start"),
    path("access-reviews/<uuid:campaign_id>/", views.access_review, name="access_review"),
    path(
        "access-reviews/questions/<uuid:item_id>/answer/",
        views.access_review_answer,
        name="access_review_answer",
    ),
]
