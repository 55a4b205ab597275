from django.urls import path

from accounts import devmail, views
from core.routes import actions

app_name = "accounts"

urlpatterns = [
    path("", views.home, name="home"),
    path("organisation/none/", views.no_organisation, name="no_organisation"),
    path("organisation/switch/", views.switch_organisation, name="switch_organisation"),
    *actions("organisation/", views.members),
    *actions("organisation/members/", views.member_invite),
    *actions(
        "organisation/members/<uuid:membership_id>/", views.member_change_role, views.member_remove
    ),
    *actions(
        "organisation/invitations/<uuid:invitation_id>/",
        views.invitation_resend,
        views.invitation_cancel,
    ),
    *actions("", views.preferences),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("dev/mail/", devmail.mailbox_view, name="dev_mail"),
    path("dev/mail/<str:message_id>/", devmail.message_detail, name="dev_mail_message"),
]
