import pytest
from django.test import Client


def test_healthz_answers_ok_without_touching_services(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["X-Request-ID"]


@pytest.mark.django_db
def test_readyz_reports_database_and_broker_ready(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ready"


@pytest.mark.django_db
def test_readyz_answers_503_with_a_reason_when_the_broker_is_down(client: Client, settings) -> None:
    from portal.celery import app

    # Celery prefers the CELERY_BROKER_URL environment variable (set in CI) over
    # conf.broker_url, so the probe's own setting, the write URL, is the one to break.
    original = app.conf.get("broker_write_url"), app.conf.get("broker_transport")
    app.conf.broker_write_url = "redis://127.0.0.1:1/0"
    app.conf.broker_transport = None  # the embedded transport would override the URL's
    try:
        response = client.get("/readyz")
    finally:
        app.conf.broker_write_url, app.conf.broker_transport = original
    assert response.status_code == 503
    assert "broker unreachable" in response.json()["reasons"][0]


def test_healthz_refuses_unsafe_methods(client: Client) -> None:
    assert client.post("/healthz").status_code == 405
