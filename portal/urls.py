from collections.abc import Callable
from typing import Any

from allauth.account.decorators import secure_admin_login
from allauth.mfa.base import views as mfa_views
from allauth.mfa.recovery_codes import views as recovery_code_views
from allauth.mfa.totp import views as totp_views
from django.contrib import admin
from django.urls import include, path
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from accounts import views as accounts_views
from api.page_urls import admin_urlpatterns as api_admin_urls
from notifications import devhooks as notification_devhooks
from portal import errors, health


def _secret_handling(view: Callable[..., Any]) -> Callable[..., Any]:
    """allauth's MFA views, with every posted field and every local of every frame below
    them kept out of error reports: they handle TOTP secrets, one-time codes and recovery
    codes, and allauth marks only its password views."""
    return sensitive_variables()(sensitive_post_parameters()(view))


# Before allauth's own URLs, so these wrapped views answer the same paths and names.
MFA_SECRET_VIEWS = [
    ("accounts/2fa/", mfa_views.index, "mfa_index"),
    ("accounts/2fa/authenticate/", mfa_views.authenticate, "mfa_authenticate"),
    ("accounts/2fa/reauthenticate/", mfa_views.reauthenticate, "mfa_reauthenticate"),
    ("accounts/2fa/totp/activate/", totp_views.activate_totp, "mfa_activate_totp"),
    ("accounts/2fa/totp/deactivate/", totp_views.deactivate_totp, "mfa_deactivate_totp"),
    (
        "accounts/2fa/recovery-codes/",
        recovery_code_views.view_recovery_codes,
        "mfa_view_recovery_codes",
    ),
    (
        "accounts/2fa/recovery-codes/generate/",
        recovery_code_views.generate_recovery_codes,
        "mfa_generate_recovery_codes",
    ),
    (
        "accounts/2fa/recovery-codes/download/",
        recovery_code_views.download_recovery_codes,
        "mfa_download_recovery_codes",
    ),
]

# The admin site's own sign-in form would start a full portal session with a password alone:
# no second factor, no sign-in rate limit, no email verification. It sends people to the
# portal's sign-in instead, and lets in only staff who are already signed in there.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # Before allauth's URLs: sign-up registers an organisation along with its first admin.
    path("accounts/signup/", accounts_views.organisation_signup, name="account_signup"),
    *[path(route, _secret_handling(view), name=name) for route, view, name in MFA_SECRET_VIEWS],
    path("accounts/", include("allauth.urls")),
    # The header's language switcher: Django's set_language, and the person's own.
    path("i18n/setlang/", accounts_views.language_set, name="set_language"),
    path("admin/", admin.site.urls),
    path("delegations/", include("delegations.urls")),
    path("audit/", include("auditor.urls")),
    # Partner runbooks through OOS.
    path("runbooks/", include("runbooks.urls")),
    # Notifications: preferences, chat channels, and the local webhook inbox of `make run`.
    path("notifications/", include("notifications.urls")),
    path("dev/webhooks/", notification_devhooks.inbox, name="dev_webhooks"),
    path(
        "dev/webhooks/receive/<str:token>/",
        notification_devhooks.receive,
        name="dev_webhooks_receive",
    ),
    # The REST API and its pages.
    path("api/v1/", include("api.urls")),
    path("organisation/service-accounts/", include(api_admin_urls)),
    path("", include("api.page_urls")),
    path("", include("accounts.urls")),
]

handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.page_not_found
handler500 = errors.server_error
