"""core.web: the helpers every page uses to show a refusal, keep a page out of caches and
read ids from URLs."""

import uuid

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, JsonResponse

from core.web import MAX_BIGINT, add_form_errors, no_store, parse_uuid, refusal_text, whole_number


class _NameForm(forms.Form):
    name = forms.CharField()


def test_a_field_error_lands_on_the_field_the_form_has_and_the_rest_at_the_top() -> None:
    form = _NameForm({"name": "x"})
    assert form.is_valid()
    add_form_errors(form, ValidationError({"name": "Taken.", "unknown": "Not a field."}))
    assert form.errors["name"] == ["Taken."]
    assert form.non_field_errors() == ["Not a field."]


def test_an_error_without_a_field_lands_at_the_top() -> None:
    form = _NameForm({"name": "x"})
    assert form.is_valid()
    add_form_errors(form, ValidationError("No."))
    assert form.non_field_errors() == ["No."]


def test_a_refusal_reads_as_its_messages_or_a_plain_default() -> None:
    assert refusal_text(ValidationError(["One.", "Two."])) == "One. Two."
    assert refusal_text(PermissionError("Not yours.")) == "Not yours."
    assert refusal_text(PermissionError()) == "This is not allowed."


def test_no_store_keeps_a_page_out_of_caches_and_a_secret_out_of_indexes() -> None:
    assert no_store(HttpResponse())["Cache-Control"] == "no-store"
    secret = no_store(JsonResponse({}), secret=True)
    assert isinstance(secret, JsonResponse)
    assert secret["Cache-Control"] == "no-store, max-age=0"
    assert secret["Pragma"] == "no-cache"
    assert secret["X-Robots-Tag"] == "noindex"


def test_an_id_that_is_not_a_uuid_is_a_page_that_does_not_exist() -> None:
    value = uuid.uuid4()
    assert parse_uuid(value) is value
    assert parse_uuid(str(value)) == value
    for bad in ("nope", None, "", 12):
        with pytest.raises(Http404):
            parse_uuid(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("42", 42), (str(MAX_BIGINT), MAX_BIGINT), (str(MAX_BIGINT + 1), None)]
    + [(bad, None) for bad in ("", "-1", "1.5", " 1", "²", "١٢", "1e3", "9" * 40)],
)
def test_a_whole_number_from_a_url_is_ascii_digits_within_a_bigint(
    text: str, expected: int | None
) -> None:
    assert whole_number(text) == expected


def test_a_whole_number_may_be_held_to_a_smaller_maximum() -> None:
    assert whole_number("10", maximum=9) is None
    assert whole_number("9", maximum=9) == 9
