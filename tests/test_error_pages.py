"""With DEBUG off (what `make run` and production serve), errors show the product's own pages:
plain words and the request id, nothing of the code (issue 18, item 7)."""

import pytest
from django.core.handlers.base import BaseHandler
from django.test import Client, override_settings

DEBUG_OUTPUT = ("Traceback", "URLconf", "DEBUG = True", "urlpatterns", "settings.py", "boom-")


@pytest.mark.django_db
@override_settings(DEBUG=False)
def test_a_404_is_the_product_s_page_with_the_request_id() -> None:
    response = Client().get("/no/such/page/")
    body = response.content.decode()
    assert response.status_code == 404
    assert f'data-testid="request-id">{response["X-Request-ID"]}<' in body
    assert "We could not find that page" in body
    assert not [text for text in DEBUG_OUTPUT if text in body]


@pytest.mark.django_db
@override_settings(DEBUG=False)
def test_a_500_is_the_product_s_page_with_the_request_id(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self, request):
        raise RuntimeError("boom-internal-detail")

    monkeypatch.setattr(BaseHandler, "resolve_request", broken)
    response = Client(raise_request_exception=False).get("/")
    body = response.content.decode()
    assert response.status_code == 500
    assert f'data-testid="request-id">{response["X-Request-ID"]}<' in body
    assert not [text for text in DEBUG_OUTPUT if text in body]
