"""Keyword arguments -> a JobSpec message, each value checked against its proto field's type."""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Mapping
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from ._proto import gradlab_pb2 as pb
from .errors import InvalidArgument
from .models import Thresholds

SPEC_FIELDS: tuple[str, ...] = tuple(f.name for f in pb.JobSpec.DESCRIPTOR.fields)
THRESHOLD_FIELDS: tuple[str, ...] = tuple(f.name for f in pb.Thresholds.DESCRIPTOR.fields)

_INTS = {FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64}
_FLOATS = {FieldDescriptor.CPPTYPE_DOUBLE}


def unknown_keyword(where: str, name: str, known: tuple[str, ...]) -> TypeError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return TypeError(f"{where}() got an unexpected keyword argument {name!r}{hint}; known: {', '.join(known)}")


def _scalar(msg: Any, name: str, value: Any, path: str) -> None:
    fd = msg.DESCRIPTOR.fields_by_name[name]
    t = fd.cpp_type
    if t in _INTS:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{path}: expected a whole number, got {value!r}")
        value = int(value)
        if value < 0:
            raise InvalidArgument(f"{path}: must be a whole number >= 0, got {value}", field=path)
        limit = 2**32 if t == FieldDescriptor.CPPTYPE_UINT32 else 2**64
        if value >= limit:
            raise InvalidArgument(f"{path}: {value} is too large", field=path)
        setattr(msg, name, int(value))
    elif t in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{path}: expected a number, got {value!r}")
        setattr(msg, name, float(value))
    elif t == FieldDescriptor.CPPTYPE_BOOL:
        if not isinstance(value, bool):
            raise TypeError(f"{path}: expected True or False, got {value!r}")
        setattr(msg, name, value)
    elif t == FieldDescriptor.CPPTYPE_STRING:
        if not isinstance(value, str):
            raise TypeError(f"{path}: expected a string, got {value!r}")
        setattr(msg, name, value)
    else:  # pragma: no cover - JobSpec has no other scalar types
        raise TypeError(f"{path}: unsupported field type")


def job_spec(where: str = "submit", **fields: Any) -> pb.JobSpec:
    """A JobSpec message from keyword arguments named as its fields (``None`` leaves a field to the
    server's default). Strings go as they are: the server parses ``activation="relu"``,
    ``optimizer="adam:0.9,0.999,1e-8"`` and ``init="orthogonal:1.5"`` as the CLI does."""
    spec = pb.JobSpec()
    for name, value in fields.items():
        if name not in SPEC_FIELDS:
            raise unknown_keyword(where, name, SPEC_FIELDS)
        if value is None:
            continue
        if name == "labels":
            if not isinstance(value, Mapping):
                raise TypeError(f"labels: expected a mapping of str to str, got {value!r}")
            for k, v in value.items():
                spec.labels[str(k)] = str(v)
        elif name == "hidden":
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise TypeError(f"hidden: expected a sequence of widths, got {value!r}")
            for i, w in enumerate(value):
                if isinstance(w, bool) or not isinstance(w, numbers.Integral):
                    raise TypeError(f"hidden[{i}]: expected a whole number, got {w!r}")
                if not 0 <= int(w) < 2**32:
                    raise InvalidArgument(f"hidden[{i}]: must be a whole number >= 0, got {w}", field="hidden")
                spec.hidden.append(int(w))
        elif name == "thresholds":
            items = value.__dict__ if isinstance(value, Thresholds) else value
            if not isinstance(items, Mapping):
                raise TypeError(f"thresholds: expected a mapping or gradlab.Thresholds, got {value!r}")
            for k, v in items.items():
                if k not in THRESHOLD_FIELDS:
                    raise unknown_keyword("thresholds", k, THRESHOLD_FIELDS)
                if v is not None:
                    _scalar(spec.thresholds, k, v, f"thresholds.{k}")
            spec.thresholds.SetInParent()
        else:
            _scalar(spec, name, value, name)
    return spec


def merge_base(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A sweep's base with keyword overrides, as the CLI applies its flags to a preset's base:
    ``depth`` alone keeps the base width (and ``width`` the base depth), ``hidden`` replaces both,
    ``sigma_w``/``sigma_b`` make the init custom (``sigma_w`` alone with ``sigma_b`` 0), ``labels`` are
    added to the base's."""
    out = dict(base)
    over = {k: v for k, v in overrides.items() if v is not None}
    if "hidden" in over:
        out.pop("depth", None)
        out.pop("width", None)
    if "depth" in over or "width" in over:
        out.pop("hidden", None)
    if ("sigma_w" in over or "sigma_b" in over) and "init" not in over:
        out.pop("init", None)
    if "sigma_w" in over and "sigma_b" not in over:
        out.pop("sigma_b", None)  # sigma_w alone is the custom init (sigma_w, 0), as the CLI's --sigma-w
    if "init" in over and "sigma_w" not in over:
        out.pop("sigma_w", None)
        out.pop("sigma_b", None)
    if "labels" in over:
        over["labels"] = {**out.get("labels", {}), **over["labels"]}
    out.update(over)
    return out
