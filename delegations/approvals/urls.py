"""URLs of the approval-rules pages (in the `delegations` namespace)."""

from django.urls import path

from core.routes import actions
from delegations.approvals import views

urlpatterns = [
    path("approval-rules/", views.approval_rules, name="approval_rules"),
    path("approval-rules/groups/new/", views.approver_group_create, name="approver_group_create"),
    *actions(
        "approval-rules/groups/<uuid:group_id>/",
        views.approver_group_edit,
        views.approver_group_delete,
    ),
    path(
        "approval-rules/roles/<uuid:catalog_role_id>/quorum/",
        views.quorum_set,
        name="approval_quorum_set",
    ),
    path("approval-rules/four-eyes/", views.four_eyes_set, name="approval_four_eyes"),
    *actions("approval-rules/proposals/<uuid:proposal_id>/", views.rule_proposal_decide),
]
