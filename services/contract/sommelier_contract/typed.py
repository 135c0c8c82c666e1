"""Documents as frozen dataclasses and back: JSON values in, a typed object out (`build`, which says where a document
is malformed), and the JSON values of an object (`plain`, leaving out the fields marked `omit` while they hold their
default). The manifest and the monitoring report are written this way; a field's type hint is what `build` checks.
"""

from __future__ import annotations

import typing
from dataclasses import MISSING, field, fields, is_dataclass
from types import UnionType
from typing import Any


def omit(default: Any = None) -> Any:
    """A field left out of the JSON while it holds `default` (as the format always did)."""
    if isinstance(default, tuple | dict):
        return field(default_factory=type(default), metadata={"omit": True})
    return field(default=default, metadata={"omit": True})


def plain(value: Any) -> Any:
    """A dataclass (nested) as JSON values, leaving out `omit` fields that hold their default."""
    if is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in fields(value):
            item = getattr(value, f.name)
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            if f.metadata.get("omit") and item == default:
                continue
            out[f.name] = plain(item)
        return out
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def build(cls: type, doc: Any, where: str, strict: bool = False) -> Any:
    """`cls` from JSON values. A reader ignores fields it does not know (a later format's); a writer passes `strict`, so
    a field its type does not declare is an error rather than silently left out of what it writes."""
    if not isinstance(doc, dict):
        raise ValueError(f"{where} must be an object, not {type(doc).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for name, value in doc.items():
        if name in known:
            kwargs[name] = _convert(hints[name], value, f"{where}.{name}", strict)
        elif strict:
            raise ValueError(f"{where}.{name} is not a field of {cls.__name__}")
    missing = [n for n, f in known.items() if n not in kwargs and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise ValueError(f"{where} lacks {', '.join(missing)}")
    return cls(**kwargs)


def _convert(hint: Any, value: Any, where: str, strict: bool) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, UnionType):
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if isinstance(hint, type) and is_dataclass(hint):
        return build(hint, value, where, strict)
    if origin is dict and len(args) == 2 and isinstance(args[1], type) and is_dataclass(args[1]):
        if not isinstance(value, dict):
            raise ValueError(f"{where} must be an object")
        return {k: build(args[1], v, f"{where}.{k}", strict) for k, v in value.items()}
    if origin is tuple and args and isinstance(args[0], type) and is_dataclass(args[0]):
        if not isinstance(value, list):
            raise ValueError(f"{where} must be a list")
        return tuple(build(args[0], v, f"{where}[{i}]", strict) for i, v in enumerate(value))
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value
