"""URL patterns from a table (core.routes): the route and the name follow from each view's
name, so a group of pages under one prefix is written once."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views import View

from core.routes import actions, exports, view_name


def catalog_role_edit(request: HttpRequest) -> HttpResponse:
    return HttpResponse()


def delegation_approve(request: HttpRequest) -> HttpResponse:
    return HttpResponse()


class ExtensionApproveView(View):
    pass


def _routes(patterns: list) -> list[tuple[str, str | None]]:
    return [(str(pattern.pattern), pattern.name) for pattern in patterns]


def test_view_name_of_a_function_and_of_a_class_view() -> None:
    assert view_name(catalog_role_edit) == "catalog_role_edit"
    assert view_name(ExtensionApproveView.as_view()) == "extension_approve"


def test_actions_take_the_last_word_as_route_and_the_view_name_as_name() -> None:
    patterns = actions(
        "catalogue/roles/<uuid:catalog_role_id>/",
        catalog_role_edit,
        ExtensionApproveView.as_view(),
    )
    assert _routes(patterns) == [
        ("catalogue/roles/<uuid:catalog_role_id>/edit/", "catalog_role_edit"),
        ("catalogue/roles/<uuid:catalog_role_id>/approve/", "extension_approve"),
    ]
    assert patterns[0].callback is catalog_role_edit


def test_actions_drop_a_leading_part_of_the_name() -> None:
    patterns = actions("<uuid:delegation_id>/", delegation_approve, drop="delegation_")
    assert _routes(patterns) == [("<uuid:delegation_id>/approve/", "approve")]


def test_exports_are_the_csv_and_json_pair() -> None:
    patterns = exports("access/", "access_report", catalog_role_edit, delegation_approve)
    assert _routes(patterns) == [
        ("access/export.csv", "access_report_csv"),
        ("access/export.json", "access_report_json"),
    ]
    assert [p.callback for p in patterns] == [catalog_role_edit, delegation_approve]


def test_the_portal_urls_built_with_it_resolve_as_before() -> None:
    uid = "00000000-0000-0000-0000-000000000000"
    # A few of the patterns the apps build with `actions` and `exports`.
    assert reverse("delegations:approve", args=[uid]) == f"/delegations/{uid}/approve/"
    assert reverse("delegations:catalog_role_edit", args=[uid]) == (
        f"/delegations/catalogue/roles/{uid}/edit/"
    )
    assert reverse("audit:events_csv") == "/audit/events/export.csv"
    assert reverse("notifications:delivery_retry", args=[uid]) == (
        f"/notifications/channels/{uid}/retry/"
    )
