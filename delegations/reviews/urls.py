"""URLs of the access-review pages (in the `delegations` namespace)."""

from django.urls import path

from core.routes import actions
from delegations.reviews import views

urlpatterns = [
    path("access-reviews/", views.access_reviews, name="access_reviews"),
    *actions("access-reviews/", views.access_review_schedule, views.access_review_start),
    path("access-reviews/<uuid:campaign_id>/", views.access_review, name="access_review"),
    *actions("access-reviews/questions/<uuid:item_id>/", views.access_review_answer),
]
