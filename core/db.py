"""Database idioms the apps share."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils.functional import Promise

if TYPE_CHECKING:
    # A translatable message (gettext_lazy) is as good as a str here.
    from django_stubs_ext import StrOrPromise


@contextmanager
def conflict_as_validation_error(
    message: StrOrPromise | Mapping[str, StrOrPromise],
) -> Iterator[None]:
    """Run the block in a savepoint and answer a constraint it breaks with
    `ValidationError(message)`.

    The services check uniqueness before they write, so a violation here means another request
    got there first: the person gets a form error, and the savepoint keeps the caller's
    transaction usable."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError:
        raise ValidationError(
            message if isinstance(message, str | Promise) else dict(message)
        ) from None


def range_constraint(field: str, low: int, high: int, *, name: str) -> models.CheckConstraint:
    """The database's own guard that `field` lies in [low, high], behind the forms' and the
    services' checks: a row written around them is refused too."""
    return models.CheckConstraint(
        condition=models.Q(**{f"{field}__gte": low}) & models.Q(**{f"{field}__lte": high}),
        name=name,
    )
