"""Catalog rows by column name: a row is built from fields named like its table's columns
(:data:`hpclab.catalog.schema.TABLES`), never from values in the right order.

``row("evidence", unit, project="lab")`` takes the fields of the dataclass ``unit`` (or a
mapping's keys) and the keywords, and returns the values in the table's column order. A
field no column has, or a column no field fills, raises :class:`SchemaMismatch` naming the
table and the field: adding a column to the schema, or a field to a dataclass, fails at
the first row built rather than shifting every value after it into the wrong column.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from hpclab.catalog.schema import TABLES
from hpclab.errors import SchemaMismatch

Row = tuple[Any, ...]


@functools.cache
def names(table: str) -> tuple[str, ...]:
    """The table's column names, in order (raises SchemaMismatch for an unknown table)."""
    try:
        return tuple(c.name for c in TABLES[table])
    except KeyError:
        raise SchemaMismatch(f"no catalog table {table!r}") from None


@functools.cache
def _name_set(table: str) -> frozenset[str]:
    return frozenset(names(table))


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def fields(part: Any) -> Mapping[str, Any]:
    """A dataclass instance's fields, or a mapping as it is."""
    if isinstance(part, Mapping):
        return part
    if dataclasses.is_dataclass(part) and not isinstance(part, type):
        return {n: getattr(part, n) for n in _field_names(type(part))}
    raise TypeError(f"a catalog row is built from dataclasses and mappings, not {part!r}")


def renamed(part: Any, **new_names: str) -> dict[str, Any]:
    """``part``'s fields with some renamed to the table's column names:
    ``renamed(ci, low="ci_low", high="ci_high")``. Renaming a field ``part`` does not
    have raises SchemaMismatch (a stale rename would hide the field it meant)."""
    out = dict(fields(part))
    for old, new in new_names.items():
        if old not in out:
            raise SchemaMismatch(f"{type(part).__name__} has no field {old!r} to rename to {new!r}")
        out[new] = out.pop(old)
    return out


def row(table: str, *parts: Any, **values: Any) -> Row:
    """One row of ``table``: the fields of ``parts`` (dataclasses or mappings) and
    ``values``, later ones replacing earlier ones, in the table's column order. Every
    column must be given a value and every field must be a column."""
    if parts:
        merged: dict[str, Any] = {}
        for part in parts:
            merged.update(fields(part))
        merged.update(values)
    else:
        merged = values
    if merged.keys() != _name_set(table):
        _mismatch(table, merged.keys())
    return _picker(table)(merged)


@functools.cache
def _picker(table: str) -> Callable[[Mapping[str, Any]], Any]:
    """The table's values of a mapping, in column order, as a tuple (a C-level pick)."""
    cols = names(table)
    pick = itemgetter(*cols)
    return pick if len(cols) > 1 else lambda m: (pick(m),)


def positional(table: str, *order: str) -> Callable[..., Row]:
    """A builder of many rows of ``table`` from values given in ``order`` (every column
    once, checked here, not per row): :func:`row`'s contract at a tuple's cost, for the
    features table's 200,000 rows at 10,000 runs."""
    if set(order) != _name_set(table):
        _mismatch(table, order)
    if len(set(order)) != len(order):
        raise SchemaMismatch(f"{table}: a column named twice in {order}")
    cols = names(table)
    if order == cols:
        return lambda *values: values
    # a C-level pick (a generator per row was most of a 200,000-row table); two or more
    # columns here (one column is always in order), so it returns a tuple
    pick = itemgetter(*[order.index(c) for c in cols])
    return lambda *values: pick(values)


def as_dict(table: str, values: Sequence[Any]) -> dict[str, Any]:
    """A row (values in column order, as read back from the table) keyed by column name."""
    cols = names(table)
    if len(values) != len(cols):
        raise SchemaMismatch(f"{table}: a row of {len(values)} values for {len(cols)} columns")
    return dict(zip(cols, values, strict=True))


def columns(table: str, rows: Iterable[Row]) -> dict[str, list[Any]]:
    """Rows built by :func:`row`, as the table's columns (what the Parquet writer takes)."""
    cols = names(table)
    rows = rows if isinstance(rows, list) else list(rows)
    width = len(cols)
    if rows and set(map(len, rows)) != {width}:
        raise SchemaMismatch(f"{table}: a row of other than {width} values")
    # one C-level pass per column (zip(*rows) keeps an iterator per row: 5x slower at the
    # features table's 200,000 rows)
    return {c: list(map(itemgetter(i), rows)) for i, c in enumerate(cols)}


def _mismatch(table: str, given: Iterable[str]) -> None:
    given = set(given)
    cols = _name_set(table)
    unknown = sorted(given - cols)
    if unknown:
        raise SchemaMismatch(
            f"{table}: no column {unknown[0]!r} (row fields not in the table: {', '.join(unknown)})"
        )
    missing = [n for n in names(table) if n not in given]
    raise SchemaMismatch(
        f"{table}: no value for column {missing[0]!r} (columns not filled: {', '.join(missing)})"
    )


__all__ = ["Row", "as_dict", "columns", "fields", "names", "renamed", "positional", "row"]
