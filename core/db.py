"""Database idioms the apps share."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Self

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.utils.functional import Promise

if TYPE_CHECKING:
    # A translatable message (gettext_lazy) is as good as a str here.
    from django_stubs_ext import StrOrPromise


class ReportsChange:
    """Mixed into a model whose services return the instance they acted on: `changed`, not
    stored, is True when the call changed it and False when it found the change already made
    (a double click, a retry), so a page can say "nothing changed"."""

    changed: bool = False

    def unchanged(self) -> Self:
        """This instance, reporting that the call found its change already made: what a
        service returns for a double click or a retry."""
        self.changed = False
        return self


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


def exactly_one_set(first: str, second: str, *, name: str) -> models.CheckConstraint:
    """The database's guard that a row names exactly one of two nullable references: one set,
    the other empty."""
    return models.CheckConstraint(
        condition=models.Q(**{f"{first}__isnull": False, f"{second}__isnull": True})
        | models.Q(**{f"{first}__isnull": True, f"{second}__isnull": False}),
        name=name,
    )


def _json_scalar(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal | Promise):
        return str(value)
    raise TypeError(f"{type(value).__name__} has no JSON form for a bulk insert")


# Field types whose attribute holds what the column stores (JSON fields: their structure).
_STORED_AS_IS: frozenset[type[models.Field]] = frozenset(
    {
        models.BigIntegerField,
        models.BooleanField,
        models.CharField,
        models.DateTimeField,
        models.EmailField,
        models.ForeignKey,
        models.IntegerField,
        models.JSONField,
        models.OneToOneField,
        models.PositiveIntegerField,
        models.PositiveSmallIntegerField,
        models.SmallIntegerField,
        models.TextField,
        models.UUIDField,
    }
)


def json_rows_insert(model: type[models.Model], objs: Sequence[models.Model]) -> tuple[str, str]:
    """PostgreSQL: an INSERT of `objs` that takes all their values in one JSON parameter.

    Returns (`INSERT INTO <table> (<columns>) SELECT <columns> FROM
    json_populate_recordset(NULL::<table>, %s::json)`, the parameter). Django's own multi-row
    INSERT binds every value as a parameter, which psycopg quotes one by one in Python when
    the statement is sent: a hundred rows of fifteen columns cost more CPU than everything
    else the statement does. Here the values go as one JSON document, encoded in C, and
    PostgreSQL casts each to its column's type. The values are what `bulk_create` would write
    (defaults and `pre_save` applied, JSON fields as their structure); primary keys the
    database generates are left to it and not read back."""
    # As bulk_create: the database fills generated columns and the keys it numbers itself.
    fields = [
        field
        for field in model._meta.local_concrete_fields
        if not field.generated and not (field.primary_key and isinstance(field, models.AutoField))
    ]
    # A field of these types holds its column's value as it is (JSON fields their structure),
    # so it is read straight off the object: going through `pre_save` and `get_db_prep_save`
    # for each of a hundred rows' columns costs more than the rest of the insert.
    as_is = [
        type(field) in _STORED_AS_IS
        and not getattr(field, "auto_now", False)
        and not getattr(field, "auto_now_add", False)
        for field in fields
    ]
    rows = []
    for obj in objs:
        row = {}
        for field, plain in zip(fields, as_is, strict=True):
            if plain:
                row[field.column] = getattr(obj, field.attname)
            else:
                row[field.column] = field.get_db_prep_save(
                    field.pre_save(obj, add=True), connection
                )
        rows.append(row)
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(field.column) for field in fields)
    sql = (
        f"INSERT INTO {table} ({columns}) SELECT {columns}"  # noqa: S608 (names)
        f" FROM json_populate_recordset(NULL::{table}, %s::json)"
    )
    return sql, json.dumps(rows, default=_json_scalar, separators=(",", ":"))


def insert_rows(objs: Sequence[models.Model], *, ignore_conflicts: bool = False) -> None:
    """Insert `objs` (all of one model) in one statement, as `bulk_create` would but without
    setting the primary keys the database generates: on PostgreSQL through
    `json_rows_insert`, elsewhere through `bulk_create` itself."""
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs, ignore_conflicts=ignore_conflicts)
        return
    sql, rows = json_rows_insert(model, objs)
    with connection.cursor() as cursor:
        cursor.execute(sql + (" ON CONFLICT DO NOTHING" if ignore_conflicts else ""), [rows])
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
