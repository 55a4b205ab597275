"""The embedded mailbox: read invitations and confirmations without an SMTP server.

Only when the portal runs embedded (`PORTAL_EMBEDDED`) or in DEBUG; otherwise these pages do
not exist (404).
"""

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts import mailbox


def mail_viewer_enabled() -> bool:
    return bool(settings.PORTAL_EMBEDDED or settings.DEBUG)


@never_cache
@require_GET
def mailbox_view(request: HttpRequest) -> HttpResponse:
    if not mail_viewer_enabled():
        raise Http404
    return render(
        request,
        "accounts/dev_mail.html",
        {"messages_list": mailbox.latest_messages(), "directory": mailbox.mail_directory()},
    )


@never_cache
@require_GET
def message_detail(request: HttpRequest, message_id: str) -> HttpResponse:
    if not mail_viewer_enabled():
        raise Http404
    message = mailbox.message_get(message_id)
    if message is None:
        raise Http404
    return render(request, "accounts/dev_mail_message.html", {"message": message})
