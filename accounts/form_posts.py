"""The one way a page answers a posted action (approve, reject, revoke, save a rule…).

Every such view did the same five steps in the same order: check the posted form (a missing or
malformed version means the page did not make the post: 400 without the page), ask for a
recent sign-in, call the service, show the service's ValidationError on the form (the page
again, 400), and tell a refusal (a conflict, PermissionDenied) as a message on the page the
person came from. `FormPage` holds what differs between pages (how the page is shown again,
where "back" is, which refusals it tells); `FormPage.submit` does the steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from django.contrib import messages
from django.core.exceptions import BadRequest, PermissionDenied, ValidationError
from django.forms import BaseForm
from django.http import HttpResponse

from accounts.permissions import AuthenticatedHttpRequest, StepUp, step_up
from core.web import add_form_errors, report_refusal

ResultT = TypeVar("ResultT")

# What the service is called with: the form's cleaned data (empty without a form) and the
# step-up (whether the recent sign-in used MFA).
Act = Callable[[Mapping[str, Any], StepUp], ResultT]

_UNCONFIRMED = StepUp(response=None, with_mfa=False)


def say_changed(request: AuthenticatedHttpRequest, changed: bool, done: str, same: str) -> None:
    """The message of an idempotent action: `done` when it changed something, else `same`."""
    if changed:
        messages.success(request, done)
    else:
        messages.info(request, same)


@dataclass(frozen=True)
class FormPage:
    """A page that takes posted actions. `redisplay(request, [subject,] **{name: form})` shows
    it again with a bound form, answering 400; `back([subject])` is the redirect after an action
    or a refusal; `refused` are the errors told as a message on `back` (a ValidationError among
    them is told too, instead of shown on the form)."""

    redisplay: Callable[..., HttpResponse]
    back: Callable[..., HttpResponse]
    refused: tuple[type[Exception], ...] = (PermissionDenied,)

    def submit(
        self,
        request: AuthenticatedHttpRequest,
        form: BaseForm | None,
        act: Act[ResultT],
        *,
        subject: object = None,
        name: str = "form",
        done: Callable[[ResultT], HttpResponse | None] | None = None,
        confirm: bool = True,
        malformed: Literal["version", "any"] | None = None,
    ) -> HttpResponse:
        """Check `form` (None: nothing posted but the CSRF token), ask for a recent sign-in when
        `confirm`, then `act`. `done(result)` says what happened (messages) and may name
        another page than `back`. `malformed="version"` answers a bad version with a bare 400,
        `"any"` every invalid form."""
        subject_args = () if subject is None else (subject,)
        if form is not None and not form.is_valid():
            if malformed == "any" or (malformed == "version" and "version" in form.errors):
                raise BadRequest("Missing or malformed version.")
            return self.redisplay(request, *subject_args, **{name: form})
        confirmation = step_up(request) if confirm else _UNCONFIRMED
        if confirmation.response is not None:
            return confirmation.response
        try:
            result = act({} if form is None else form.cleaned_data, confirmation)
        except self.refused as error:
            report_refusal(request, error)
            return self.back(*subject_args)
        except ValidationError as error:
            if form is None:
                raise
            add_form_errors(form, error)
            return self.redisplay(request, *subject_args, **{name: form})
        elsewhere = done(result) if done is not None else None
        return elsewhere if elsewhere is not None else self.back(*subject_args)
