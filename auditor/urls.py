from django.urls import path

from auditor import activity_views, rules_views, views

app_name = "audit"

urlpatterns = [
    path("", views.event_list, name="events"),
    # Any text: the selector parses it, so a malformed or huge number is a plain 404.
    path("events/<str:sequence>/", views.event_detail, name="event_detail"),
    path("events/export.csv", views.events_export_csv, name="events_csv"),
    path("events/export.json", views.events_export_json, name="events_json"),
    path("delegations/<uuid:delegation_id>/", views.delegation_timeline, name="timeline"),
    path("access/", views.access_report_view, name="access_report"),
    path("access/export.csv", views.access_report_csv, name="access_report_csv"),
    path("access/export.json", views.access_report_json, name="access_report_json"),
    # Approval rules, break-glass windows and access reviews (issue 14).
    path("rules/", rules_views.approval_rules_record, name="rules"),
    path("reviews/", rules_views.review_report, name="review_report"),
    path("reviews/export.csv", rules_views.review_report_csv, name="review_report_csv"),
    path("reviews/export.json", rules_views.review_report_json, name="review_report_json"),
    path("verify/", views.verify, name="verify"),
    path("verify/start/", views.verify_start, name="verify_start"),
    path("verify/<uuid:verification_id>/", views.verify_run, name="verify_run"),
    # A delegation's partner activity from ActionTrail (activity).
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
    path(
        "delegations/<uuid:delegation_id>/activity/export.csv",
        activity_views.delegation_activity_csv,
        name="activity_csv",
    ),
    path(
        "delegations/<uuid:delegation_id>/activity/export.json",
        activity_views.delegation_activity_json,
        name="activity_json",
    ),
]
