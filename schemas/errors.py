"""Errors raised by ``schemas``, and the project's one type for bad input.

InputError                 what its caller asked for is wrong: an unknown dataset, symbol or
 │                         option, a value the option does not take, a malformed date (the
 │                         command line prints it as one line and exits 2; any other
 │                         exception is a bug: a traceback and exit 1)
 └── UnknownNameError      a name nothing is registered under (also a ``KeyError``)

SchemaError
 ├── UnknownTRError        an id the catalog does not hold
 ├── BodyShapeError        a body that is not shaped as the TR's catalog entry says
 ├── FieldValueError       a value that does not fit its field's kind
 └── UnitOverflowError     a value that overflows once converted to won or shares
"""

from __future__ import annotations

__all__ = [
    "BodyShapeError",
    "FieldValueError",
    "InputError",
    "SchemaError",
    "UnitOverflowError",
    "UnknownNameError",
    "UnknownTRError",
]


class InputError(ValueError):
    """What the caller asked for is wrong (bad input): one line, exit 2 on the command line."""


class UnknownNameError(InputError, KeyError):
    """A name nothing is registered under (a dataset, a family, a symbol)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SchemaError(ValueError):
    """Base of every ``schemas`` error."""


class UnknownTRError(SchemaError, KeyError):
    def __init__(self, api_id: str) -> None:
        self.api_id = api_id
        super().__init__(f"unknown TR or realtime type {api_id!r}: not in the catalog")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class BodyShapeError(SchemaError):
    def __init__(self, api_id: str, message: str) -> None:
        self.api_id = api_id
        super().__init__(f"{api_id}: {message}")


class FieldValueError(SchemaError):
    """A wire value that does not fit the field's kind; names TR, field and value."""

    def __init__(self, api_id: str, field: str, kind: str, value: object, row: int | None) -> None:
        self.api_id = api_id
        self.field = field
        self.kind = kind
        self.value = value
        self.row = row
        where = f" (row {row})" if row is not None else ""
        super().__init__(f"{api_id}.{field}: {value!r} is not a valid {kind}{where}")


class UnitOverflowError(SchemaError):
    """A value that no longer fits a 64-bit integer once converted to won or shares."""

    def __init__(self, api_id: str, field: str, value: object, factor: int) -> None:
        self.api_id = api_id
        self.field = field
        self.value = value
        self.factor = factor
        super().__init__(
            f"{api_id}.{field}: {value!r} x {factor:,} does not fit a 64-bit integer "
            "(a wrong unit, or a garbage value)"
        )
