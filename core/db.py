"""Database idioms the apps share."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction


@contextmanager
def conflict_as_validation_error(message: str | dict[str, str]) -> Iterator[None]:
    """Run the block in a savepoint and answer a constraint it breaks with
    `ValidationError(message)`.

    The services check uniqueness before they write, so a violation here means another request
    got there first: the person gets a form error, and the savepoint keeps the caller's
    transaction usable."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError:
        raise ValidationError(message) from None
