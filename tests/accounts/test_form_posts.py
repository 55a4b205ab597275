"""FormPage.submit: the one path of a posted action (form, step-up, service, errors, back)."""

from __future__ import annotations

from typing import Any

import pytest
from django import forms
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import BadRequest, PermissionDenied, ValidationError
from django.http import HttpResponse
from django.test import RequestFactory

from accounts.form_posts import FormPage


class _Form(forms.Form):
    version = forms.IntegerField()
    reason = forms.CharField(max_length=5)


def _request(data: dict[str, str]) -> Any:
    request = RequestFactory().post("/x/", data)
    request.session = SessionStore()
    request._messages = FallbackStorage(request)
    return request


def _page(**kwargs: Any) -> FormPage:
    return FormPage(
        redisplay=lambda request, subject, **forms: HttpResponse(
            f"again {sorted(forms)}", status=400
        ),
        back=lambda subject: HttpResponse(f"back to {subject}", status=302),
        **kwargs,
    )


def test_a_valid_post_calls_the_service_and_goes_back_with_what_done_says() -> None:
    request = _request({"version": "3", "reason": "ok"})
    seen: list[Any] = []
    response = _page().submit(
        request,
        _Form(request.POST),
        lambda data, confirmation: seen.append((data["version"], confirmation.with_mfa)) or 7,
        subject="d1",
        confirm=False,
        done=lambda result: seen.append(result),
    )
    assert response.status_code == 302 and response.content == b"back to d1"
    assert seen == [(3, False), 7]


def test_done_may_name_another_page() -> None:
    request = _request({"version": "3", "reason": "ok"})
    response = _page().submit(
        request,
        _Form(request.POST),
        lambda data, _step_up: None,
        subject="d1",
        confirm=False,
        done=lambda _result: HttpResponse("elsewhere"),
    )
    assert response.content == b"elsewhere"


def test_a_bad_version_is_a_bare_400_only_when_asked() -> None:
    request = _request({"version": "x", "reason": "ok"})
    with pytest.raises(BadRequest):
        _page().submit(request, _Form(request.POST), lambda *_: None, malformed="version")
    response = _page().submit(
        request, _Form(request.POST), lambda *_: None, subject="d1", name="reject_form"
    )
    assert response.status_code == 400 and response.content == b"again ['reject_form']"


def test_any_invalid_form_is_a_bare_400_with_malformed_any() -> None:
    request = _request({"version": "1", "reason": "far too long"})
    with pytest.raises(BadRequest):
        _page().submit(request, _Form(request.POST), lambda *_: None, malformed="any")


def test_a_service_validation_error_lands_on_the_form() -> None:
    request = _request({"version": "1", "reason": "ok"})
    form = _Form(request.POST)

    def refuse(*_: Any) -> None:
        raise ValidationError({"reason": "Say more."})

    response = _page().submit(request, form, refuse, subject="d1", confirm=False)
    assert response.status_code == 400
    assert form.errors["reason"] == ["Say more."]


@pytest.mark.parametrize("error", [PermissionDenied("Not yours."), ValidationError("Too late.")])
def test_a_refusal_is_a_message_on_the_page_it_goes_back_to(error: Exception) -> None:
    request = _request({"version": "1", "reason": "ok"})

    def refuse(*_: Any) -> None:
        raise error

    page = _page(refused=(PermissionDenied, ValidationError))
    response = page.submit(request, _Form(request.POST), refuse, subject="d1", confirm=False)
    assert response.content == b"back to d1"
    assert [str(m) for m in get_messages(request)] == [str(error.args[0])]


def test_errors_not_listed_as_refusals_propagate() -> None:
    request = _request({"version": "1", "reason": "ok"})

    def refuse(*_: Any) -> None:
        raise PermissionDenied("403")

    with pytest.raises(PermissionDenied):
        _page(refused=()).submit(request, _Form(request.POST), refuse, confirm=False)
