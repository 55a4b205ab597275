from django.urls import path

from accounts import devmail, views

app_name = "accounts"

urlpatterns = [
    path("", views.home, name="home"),
    path("organisation/none/", views.no_organisation, name="no_organisation"),
    path("organisation/switch/", views.switch_organisation, name="switch_organisation"),
    path("organisation/members/", views.members, name="members"),
    path("organisation/members/invite/", views.member_invite, name="member_invite"),
    path(
        "organisation/members/<uuid:membership_id>/role/",
        views.member_change_role,
        name="member_change_role",
    ),
    path(
        "organisation/members/<uuid:membership_id>/remove/",
        views.member_remove,
        name="member_remove",
    ),
    path(
        "organisation/invitations/<uuid:invitation_id>/resend/",
        views.invitation_resend,
        name="invitation_resend",
    ),
    path(
        "organisation/invitations/<uuid:invitation_id>/cancel/",
        views.invitation_cancel,
        name="invitation_cancel",
    ),
    path("preferences/", views.preferences, name="preferences"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("dev/mail/", devmail.mailbox_view, name="dev_mail"),
    path("dev/mail/<str:message_id>/", devmail.message_detail, name="dev_mail_message"),
]
