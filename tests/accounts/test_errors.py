"""Error pages: custom, no stack traces; the 500 page shows the request id."""

import pytest
from django.test import Client
from django.urls import path

from portal import urls as portal_urls


def _boom(request: object) -> None:
    raise RuntimeError("secret internal detail xyzzy")


urlpatterns = [path("boom/", _boom), *portal_urls.urlpatterns]
handler400 = portal_urls.handler400
handler403 = portal_urls.handler403
handler404 = portal_urls.handler404
handler500 = portal_urls.handler500


@pytest.mark.django_db
def test_404_page_is_the_portals_own(client: Client) -> None:
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "We could not find that page" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.urls("tests.accounts.test_errors")
def test_500_page_shows_the_request_id_and_no_trace() -> None:
    client = Client(raise_request_exception=False)
    response = client.get("/boom/", headers={"X-Request-ID": "req-1234567890"})
    assert response.status_code == 500
    body = response.content.decode()
    assert "req-1234567890" in body
    assert "xyzzy" not in body
    assert "Traceback" not in body


@pytest.mark.django_db
def test_post_without_csrf_token_is_403(login: object, auditor: object) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(auditor)  # type: ignore[arg-type]
    response = client.post("/organisation/switch/", {"organisation": "x"})
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()


@pytest.mark.django_db
def test_too_many_fields_is_400(settings: object) -> None:
    client = Client(raise_request_exception=False)
    data = {f"f{i}": "x" for i in range(500)}
    response = client.post("/accounts/login/", data)
    assert response.status_code == 400
    assert "could not be processed" in response.content.decode()
