from django.urls import path

from runbooks import views

app_name = "runbooks"

urlpatterns = [
    path("", views.run_list, name="list"),
    path("consent/", views.consent_give, name="consent"),
    path("new/", views.run_new, name="new"),
    path("<uuid:run_id>/", views.run_detail, name="detail"),
    path("<uuid:run_id>/live/", views.run_live, name="live"),
    path("<uuid:run_id>/cancel/", views.run_cancel, name="cancel"),
    path("<uuid:run_id>/approve/", views.run_decide, {"decision": "approve"}, name="approve"),
    path("<uuid:run_id>/reject/", views.run_decide, {"decision": "reject"}, name="reject"),
    path("<uuid:run_id>/export/template.yaml", views.export_template, name="export_template"),
    path("<uuid:run_id>/export/parameters.json", views.export_parameters, name="export_parameters"),
    path(
        "grants/<uuid:delegation_id>/approval/",
        views.requirement_set,
        name="requirement",
    ),
]
