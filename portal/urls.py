from django.contrib import admin
from django.urls import include, path

from accounts import views as accounts_views
from portal import errors, health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # Before allauth's URLs: sign-up registers an organisation along with its first admin.
    path("accounts/signup/", accounts_views.organisation_signup, name="account_signup"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("delegations/", include("delegations.urls")),
    path("audit/", include("auditor.urls")),
    path("", include("accounts.urls")),
]

handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.page_not_found
handler500 = errors.server_error
