from django.http import HttpRequest

from accounts.devmail import mail_viewer_enabled


def accounts(request: HttpRequest) -> dict:
    return {"MAIL_VIEWER_ENABLED": mail_viewer_enabled()}
