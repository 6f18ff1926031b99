"""A fast decoder for ingest batches, derived from the wire schema's pydantic models.

``schema.py`` stays the one definition of the wire format. This module walks its models once, at
import, and builds msgspec structs with the same fields, names, defaults and constraints, which
decode a batch about 3.5x faster than pydantic on this machine. It is only ever a shortcut: an
input it refuses, or any report outside the time window, is parsed again by pydantic, which gives
the canonical answer and error. Floats are also bounded to finite values here, since JSON's
``1e400`` decodes to infinity. ``tests/server/test_fastwire.py`` checks that whatever this
accepts, pydantic accepts too, with the same values.
"""

from __future__ import annotations

import sys
import types
import typing
import uuid
from datetime import datetime, timedelta
from enum import Enum
from typing import Annotated, Any, Union, get_args, get_origin

import annotated_types as at
import msgspec
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from statusdash.schema import MAX_FUTURE, SCHEMA_VERSION, MetricsBatch, MetricsReport

_FLOAT_MAX = sys.float_info.max
_structs: dict[type[BaseModel], type[msgspec.Struct]] = {}


def _meta(metadata: list[Any], base: Any) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    for m in metadata:
        if isinstance(m, FieldInfo):
            kw.update(_meta(m.metadata, base))
        elif isinstance(m, at.Ge):
            kw["ge"] = m.ge
        elif isinstance(m, at.Gt):
            kw["gt"] = m.gt
        elif isinstance(m, at.Le):
            kw["le"] = m.le
        elif isinstance(m, at.Lt):
            kw["lt"] = m.lt
        elif isinstance(m, at.MinLen):
            kw["min_length"] = m.min_length
        elif isinstance(m, at.MaxLen):
            kw["max_length"] = m.max_length
        elif getattr(m, "pattern", None):
            kw["pattern"] = m.pattern
        else:
            raise TypeError(f"no msgspec equivalent for the constraint {m!r}")
    if base is float:  # finite only, as pydantic's allow_inf_nan=False
        if "gt" not in kw:
            kw.setdefault("ge", -_FLOAT_MAX)
        if "lt" not in kw:
            kw.setdefault("le", _FLOAT_MAX)
    if base is datetime:
        kw["tz"] = True  # a time without a UTC offset is refused
    return kw


def _type(tp: Any, metadata: list[Any] | None = None) -> Any:
    """The msgspec type for a pydantic annotation (and the field's own constraints)."""
    origin = get_origin(tp)
    if origin is Annotated:
        inner, *extra = get_args(tp)
        return _type(inner, [*extra, *(metadata or [])])
    if origin in (Union, types.UnionType):  # the field's constraints bind each member
        members = [a if a is type(None) else _type(a, metadata) for a in get_args(tp)]
        return typing.Union[tuple(members)]  # noqa: UP007
    if origin is list:
        (item,) = get_args(tp)
        out: Any = list[_type(item)]  # type: ignore[misc]
    elif origin is dict:
        key, value = get_args(tp)
        out = dict[_type(key), _type(value)]  # type: ignore[misc]
    elif isinstance(tp, type) and issubclass(tp, BaseModel):
        out = struct_for(tp)
    elif tp in (int, float, str, bool, datetime, uuid.UUID) or (
        isinstance(tp, type) and issubclass(tp, Enum)
    ):
        out = tp
    elif tp is type(None):
        return tp
    else:
        raise TypeError(f"no msgspec equivalent for {tp!r}")
    kw = _meta(list(metadata or []), tp)
    return Annotated[out, msgspec.Meta(**kw)] if kw else out


def struct_for(model: type[BaseModel]) -> type[msgspec.Struct]:
    """The msgspec struct mirroring ``model`` (built once, then cached)."""
    if model in _structs:
        return _structs[model]
    fields: list[tuple[str, Any, Any]] = []
    for name, info in model.model_fields.items():
        tp = _type(info.annotation, list(info.metadata))
        if info.default_factory is not None:
            default: Any = msgspec.field(
                default_factory=info.default_factory,  # type: ignore[arg-type]
                name=info.alias,
            )
        elif info.is_required():
            default = msgspec.field(name=info.alias) if info.alias else msgspec.NODEFAULT
        else:
            default = msgspec.field(default=info.default, name=info.alias)
        if name == "schema_version":  # the model's validator: no newer version than ours
            tp = Annotated[int, msgspec.Meta(ge=1, le=SCHEMA_VERSION)]
        fields.append((name, tp, default))
    struct = msgspec.defstruct(model.__name__, fields, kw_only=True)
    _structs[model] = struct
    return struct


_BATCH = msgspec.json.Decoder(struct_for(MetricsBatch))
_REPORT = msgspec.json.Decoder(struct_for(MetricsReport))


def decode_batch(body: bytes, now: datetime, max_age: timedelta) -> list[Any] | None:
    """The reports of a batch, or None if pydantic must decide (refused, or outside the window)."""
    try:
        batch = _BATCH.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    reports: list[Any] = getattr(batch, "reports")  # noqa: B009  (a struct built at import)
    newest, oldest = now + MAX_FUTURE, now - max_age
    for r in reports:
        if not oldest <= r.collected_at <= newest:
            return None
    return reports


def decode_report(body: bytes, now: datetime, max_age: timedelta) -> Any | None:
    """One report, or None if pydantic must decide (refused, or outside the window)."""
    try:
        r: Any = _REPORT.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return r if now - max_age <= r.collected_at <= now + MAX_FUTURE else None


def to_json(report: Any) -> str:
    """A report (model or struct) as the wire's JSON."""
    if isinstance(report, MetricsReport):
        return report.model_dump_json(by_alias=True)
    return msgspec.json.encode(report).decode()


def to_model(report: Any) -> MetricsReport:
    """A decoded report as the schema's model (for the cache: once per host per commit)."""
    if isinstance(report, MetricsReport):
        return report
    # The time window was checked when the batch was decoded; do not judge it by a later clock.
    ctx = {"now": report.collected_at}
    return MetricsReport.model_validate_json(msgspec.json.encode(report), context=ctx)
