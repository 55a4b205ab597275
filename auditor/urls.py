from django.urls import path

from auditor import activity_views, rules_views, views
from core.routes import actions, exports

app_name = "audit"

urlpatterns = [
    path("", views.event_list, name="events"),
    # Any text: the selector parses it, so a malformed or huge number is a plain 404.
    path("events/<str:sequence>/", views.event_detail, name="event_detail"),
    *exports("events/", "events", views.events_export_csv, views.events_export_json),
    path("delegations/<uuid:delegation_id>/", views.delegation_timeline, name="timeline"),
    path("access/", views.access_report_view, name="access_report"),
    *exports("access/", "access_report", views.access_report_csv, views.access_report_json),
    # Approval rules, break-glass windows and access reviews.
    path("rules/", rules_views.approval_rules_record, name="rules"),
    path("reviews/", rules_views.review_report, name="review_report"),
    *exports(
        "reviews/", "review_report", rules_views.review_report_csv, rules_views.review_report_json
    ),
    path("verify/", views.verify, name="verify"),
    *actions("verify/", views.verify_start),
    path("verify/<uuid:verification_id>/", views.verify_run, name="verify_run"),
    # A delegation's partner activity from ActionTrail, and a narrower role proposed from it.
    path(
        "delegations/<uuid:delegation_id>/activity/",
        activity_views.delegation_activity,
        name="activity",
    ),
    path(
        "delegations/<uuid:delegation_id>/activity/propose/",
        activity_views.delegation_propose_narrower_role,
        name="activity_propose",
    ),
    *exports(
        "delegations/<uuid:delegation_id>/activity/",
        "activity",
        activity_views.delegation_activity_csv,
        activity_views.delegation_activity_json,
    ),
]
