"""URL patterns from a table: a group of pages under one prefix is written as the prefix once and
its views, the route and the name following from each view's own name.

The convention every app's URLs already follow: a page is named after its view, and an action on
an object is the view's last word below the object's address (`catalog_role_edit` answers
`catalogue/roles/<id>/edit/` as `catalog_role_edit`; `ApproveView` answers `.../approve/` as
`approve`). A page that does not follow it keeps its own `path()`.
"""

import re
from collections.abc import Callable
from typing import Any

from django.urls import URLPattern, get_resolver, path

_CAMEL_WORD = re.compile(r"(?<!^)(?=[A-Z])")


def view_name(view: Callable[..., Any]) -> str:
    """The view's name in snake case: a function's own name, a class view's class name without
    its `View` suffix (`ExtensionApproveView` → `extension_approve`)."""
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return view.__name__
    return _CAMEL_WORD.sub("_", view_class.__name__.removesuffix("View")).lower()


def actions(prefix: str, *views: Callable[..., Any], drop: str = "") -> list[URLPattern]:
    """One pattern per view: `<prefix><last word of its name>/`, named after the view less the
    leading `drop` (`actions("<uuid:delegation_id>/", views.delegation_approve,
    drop="delegation_")` gives `<uuid:delegation_id>/approve/` named `approve`)."""
    patterns = []
    for view in views:
        name = view_name(view)
        patterns.append(
            path(f"{prefix}{name.rsplit('_', 1)[-1]}/", view, name=name.removeprefix(drop))
        )
    return patterns


def exports(
    prefix: str, name: str, csv_view: Callable[..., Any], json_view: Callable[..., Any]
) -> list[URLPattern]:
    """A report's two downloads: `<prefix>export.csv` and `<prefix>export.json`, named
    `<name>_csv` and `<name>_json`."""
    return [
        path(f"{prefix}export.csv", csv_view, name=f"{name}_csv"),
        path(f"{prefix}export.json", json_view, name=f"{name}_json"),
    ]


def load_url_configuration() -> None:
    """Load the URL configuration now: every urls and views module, most of a second of CPU
    that the first `reverse` or request of a process would otherwise pay. Servers call it as
    they start (before forking, so their processes share what it loaded)."""
    get_resolver().reverse_dict  # noqa: B018 (the property builds the map on first use)
