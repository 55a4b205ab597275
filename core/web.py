"""Web helpers every page uses, with no knowledge of the portal's apps: a service's
ValidationError shown on a form or as a message, responses kept out of caches, and ids from
URLs (and the rows they name) that answer 404 when malformed or missing, and the date and
time field the forms share."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, TypeVar

from django import forms
from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models
from django.db.models import QuerySet
from django.forms import BaseForm
from django.http import Http404, HttpRequest, HttpResponseBase
from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

ResponseT = TypeVar("ResponseT", bound=HttpResponseBase)
ModelT = TypeVar("ModelT", bound=models.Model)

# Pages that show a secret once (credentials, a credentials URI): no cache of any kind may
# keep them, and search engines must not index a URL that leaked.
_SECRET_HEADERS = {
    "Cache-Control": "no-store, max-age=0",
    "Pragma": "no-cache",
    "X-Robots-Tag": "noindex",
}


def datetime_local_field(
    *, label: StrOrPromise, required: bool = True, help_text: StrOrPromise = ""
) -> forms.DateTimeField:
    """A date and time picked in the browser's datetime-local input; typed by hand, a space
    instead of the "T", or a date alone, parses too."""
    return forms.DateTimeField(
        label=label,
        required=required,
        help_text=help_text,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
    )


def add_form_errors(form: BaseForm, error: ValidationError) -> None:
    """Show a service's ValidationError on the form: on the field it names when the form has
    that field, otherwise at the top."""
    if hasattr(error, "error_dict"):
        for field, field_errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, field_errors)
    else:
        form.add_error(None, error)


def refusal_text(error: Exception) -> str:
    """What to tell a person whose action a service refused."""
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(error) or _("This is not allowed.")


def report_refusal(request: HttpRequest, error: Exception) -> None:
    """A refusal shown as a message on the next page (for actions answered by a redirect)."""
    messages.error(request, refusal_text(error))


def no_store(response: ResponseT, *, secret: bool = False) -> ResponseT:
    """Keep `response` out of every cache; `secret` also keeps it out of old HTTP/1.0
    caches and search indexes, for pages that reveal a credential."""
    if secret:
        for name, value in _SECRET_HEADERS.items():
            response[name] = value
    else:
        response["Cache-Control"] = "no-store"
    return response


# A bigint column's largest value: a larger number in a URL is one no row has, and the
# database would refuse to compare with it.
MAX_BIGINT = 2**63 - 1


def whole_number(text: str, *, maximum: int = MAX_BIGINT) -> int | None:
    """`text` as a whole number from 0 to `maximum`, or None. ASCII digits only: str.isdigit
    also takes "²" and other digits that int() refuses."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(maximum)):
        return None
    number = int(text)
    return number if number <= maximum else None


def parse_uuid(value: object) -> uuid.UUID:
    """An id from a URL or a form; anything that is not a UUID is a page that does not exist."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError) as exc:
        raise Http404 from exc


def get_or_404(queryset: QuerySet[ModelT], **lookup: Any) -> ModelT:
    """The row `lookup` finds in `queryset` (which a selector has already narrowed to what the
    caller may see); none is a page that does not exist, exactly like a malformed id."""
    try:
        return queryset.get(**lookup)
    except ObjectDoesNotExist as exc:  # the model's own DoesNotExist
        raise Http404 from exc
