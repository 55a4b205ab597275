"""URLs of the approval-rules pages (in the `delegations` namespace)."""

from django.urls import path

from delegations.approvals import views

urlpatterns = [
    path("approval-rules/", views.approval_rules, name="approval_rules"),
    path("approval-rules/groups/new/", views.approver_group_create, name="approver_group_create"),
    path(
        "approval-rules/groups/<uuid:group_id>/edit/",
        views.approver_group_edit,
        name="approver_group_edit",
    ),
    path(
        "approval-rules/groups/<uuid:group_id>/delete/",
        views.approver_group_delete,
        name="approver_group_delete",
    ),
    path(
        "approval-rules/roles/<uuid:catalog_role_id>/quorum/",
        views.quorum_set,
        name="approval_quorum_set",
    ),
    path("approval-rules/four-eyes/", views.four_eyes_set, name="approval_four_eyes"),
    path(
        "approval-rules/proposals/<uuid:proposal_id>/decide/",
        views.rule_proposal_decide,
        name="rule_proposal_decide",
    ),
]
