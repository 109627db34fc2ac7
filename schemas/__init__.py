"""What every TR and realtime type returns, and its conversion to typed frames."""

from schemas.catalog import TR, Catalog, Field, RealtimeType, catalog
from schemas.errors import BodyShapeError, FieldValueError, SchemaError, UnknownTRError
from schemas.kinds import Kind
from schemas.normalize import (
    UnknownFieldWarning,
    normalize,
    normalize_pages,
    output_schema,
)
from schemas.realtime import normalize_realtime, realtime_schema

__all__ = [
    "TR",
    "BodyShapeError",
    "Catalog",
    "Field",
    "FieldValueError",
    "Kind",
    "RealtimeType",
    "SchemaError",
    "UnknownFieldWarning",
    "UnknownTRError",
    "catalog",
    "normalize",
    "normalize_pages",
    "normalize_realtime",
    "output_schema",
    "realtime_schema",
]
