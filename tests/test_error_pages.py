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


@pytest.mark.django_db
@override_settings(DEBUG=False)
def test_400_403_and_csrf_pages_show_the_request_id(login, partner_staff) -> None:
    client = login(partner_staff)
    # 400: a Host header the portal does not serve.
    bad = client.get("/organisation/members/", HTTP_HOST="elsewhere.example")
    # 403: a member without the role.
    forbidden = client.post("/organisation/members/invite/", {"email": "a@example.com"})
    # 403 CSRF: a form posted without its token.
    csrf = Client(enforce_csrf_checks=True)
    csrf.force_login(partner_staff)
    stale = csrf.post("/organisation/members/invite/", {"email": "a@example.com"})
    for response, status, words in (
        (bad, 400, "could not be processed"),
        (forbidden, 403, "You cannot do that here"),
        (stale, 403, "This form has expired"),
    ):
        body = response.content.decode()
        assert response.status_code == status and words in body
        assert f'data-testid="request-id">{response["X-Request-ID"]}<' in body


@pytest.mark.django_db
@override_settings(DEBUG=False)
def test_the_503_page_says_nothing_was_changed() -> None:
    from django.test import RequestFactory

    from core.request_id import RequestIdMiddleware
    from portal.errors import audit_unavailable

    # The page names the request id the middleware took for this request.
    request = RequestFactory().get("/", headers={"X-Request-ID": "req-0123456789"})
    response = RequestIdMiddleware(audit_unavailable)(request)
    body = response.content.decode()
    assert response.status_code == 503 and "Nothing was changed" in body
    assert 'data-testid="request-id">req-0123456789<' in body
    assert not [text for text in DEBUG_OUTPUT if text in body]
