"""The two downloads of a report page (`export.csv`, `export.json`): one view each, made from
the report's export function, so each report states its readers once."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.http import HttpResponseBase
from django.views.decorators.http import require_safe

from accounts.permissions import AuthenticatedHttpRequest, organisation_member_required

# `export(request, kind, **url_kwargs)`, kind being "csv" or "json".
Export = Callable[..., HttpResponseBase]
DownloadView = Callable[..., HttpResponseBase]


def download_views(
    export: Export, name: str, *, roles: Iterable[str]
) -> tuple[DownloadView, DownloadView]:
    """The `<name>_csv` and `<name>_json` views: GET or HEAD only, for members with one of
    `roles`, each answering `export(request, kind, **url_kwargs)`."""
    allowed = tuple(roles)

    def view_of(kind: str) -> DownloadView:
        def download(request: AuthenticatedHttpRequest, **url_kwargs: Any) -> HttpResponseBase:
            return export(request, kind, **url_kwargs)

        download.__name__ = download.__qualname__ = f"{name}_{kind}"
        download.__module__ = export.__module__
        view: DownloadView = require_safe(organisation_member_required(roles=allowed)(download))
        return view

    return view_of("csv"), view_of("json")
