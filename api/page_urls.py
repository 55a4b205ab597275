"""The API's pages for people (tokens, device confirmation) and admins (service accounts).
The person's own pages are named `account_*` so the auditor's read-only rule treats them as
the person's own account, like allauth's."""

from django.urls import path

from api import pages

urlpatterns = [
    path("account/tokens/", pages.tokens, name="account_tokens"),
    path("account/tokens/<uuid:token_id>/revoke/", pages.token_revoke, name="account_token_revoke"),
    path("account/device/", pages.device, name="account_device"),
]

admin_urlpatterns = (
    [
        path("", pages.service_accounts, name="service_accounts"),
        path("<uuid:account_id>/disable/", pages.service_account_disable, name="disable"),
        path("api-decisions/", pages.api_decisions, name="api_decisions"),
    ],
    "api_pages",
)
