"""A reader of HistoryChunk messages straight from their wire bytes, into numpy arrays.

protobuf's Python objects hand repeated numbers over one Python float at a time (about 20 ms per
65,536 values); a packed ``repeated double`` on the wire is already a little-endian float64
array, and ``np.frombuffer`` takes it as it is. Steps are packed varints, decoded here with
numpy in a few passes over the bytes. Everything else of the message (its evaluations) goes
through protobuf.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np

from ._proto import gradlab_pb2 as pb
from .models import EvalEvent, Histogram, LayerStats, StepEvent

_F64 = np.dtype("<f8")


@dataclass
class Column:
    metric: str
    values: np.ndarray
    min: np.ndarray
    max: np.ndarray


@dataclass
class Chunk:
    """A decoded ``HistoryChunk``: steps as int64, every column's values as float64."""

    layer: int | None = None
    steps: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    columns: list[Column] = field(default_factory=list)
    evals: list[pb.EvalEvent] = field(default_factory=list)
    downsampled: bool = False


def _varint(buf: bytes | memoryview, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise ValueError("malformed varint")


def _fields(buf: memoryview) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of each field: an int for varints and fixed64, a memoryview
    of the bytes for length-delimited ones."""
    i, n = 0, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
            yield num, wt, v
        elif wt == 1:
            yield num, wt, buf[i : i + 8]
            i += 8
        elif wt == 2:
            ln, i = _varint(buf, i)
            if i + ln > n:
                raise ValueError("truncated message")
            yield num, wt, buf[i : i + ln]
            i += ln
        elif wt == 5:
            yield num, wt, buf[i : i + 4]
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wt}")


def _uniform(b: np.ndarray, width: int) -> np.ndarray:
    """Varints that all take ``width`` bytes, as a matrix of one row each."""
    m = b.reshape(-1, width)
    out = (m[:, 0] & 0x7F).astype(np.uint64)
    for k in range(1, width):
        out |= (m[:, k] & 0x7F).astype(np.uint64) << np.uint64(7 * k)
    return out


def packed_varints(data: memoryview | bytes) -> np.ndarray:
    """Decodes packed unsigned varints into uint64, vectorised.

    One pass finds where each value ends. Increasing steps come in runs of one length in bytes
    (1 to 127 take 1, to 16,383 take 2, ...): each run is decoded as a matrix; values in any other
    order go one byte position at a time (at most 10)."""
    b = np.frombuffer(data, dtype=np.uint8)
    if b.size == 0:
        return np.empty(0, np.uint64)
    last = b < 0x80
    if not last[-1]:
        raise ValueError("truncated packed varints")
    ends = np.flatnonzero(last)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    if int(lengths.max()) > 10:
        raise ValueError("malformed varint")
    cuts = np.flatnonzero(np.diff(lengths)) + 1
    if len(cuts) < 16:
        bounds = [0, *cuts.tolist(), len(ends)]
        parts = [_uniform(b[starts[i] : ends[j - 1] + 1], int(lengths[i])) for i, j in zip(bounds[:-1], bounds[1:])]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
    out = (b[starts] & 0x7F).astype(np.uint64)
    for k in range(1, int(lengths.max())):
        idx = np.flatnonzero(lengths > k)
        out[idx] |= (b[starts[idx] + k] & 0x7F).astype(np.uint64) << np.uint64(7 * k)
    return out


class _Doubles:
    """A repeated double field: packed runs (usual) and single values (allowed by the wire format)."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []

    def add(self, wt: int, v: memoryview) -> None:
        if wt == 2:
            if len(v) % 8:
                raise ValueError("packed doubles of a length not a multiple of 8")
            self.parts.append(np.frombuffer(v, dtype=_F64))
        elif wt == 1:
            self.parts.append(np.frombuffer(v, dtype=_F64))
        else:
            raise ValueError(f"a double field with wire type {wt}")

    def array(self) -> np.ndarray:
        if not self.parts:
            return np.empty(0, np.float64)
        if len(self.parts) == 1:
            return self.parts[0].astype(np.float64, copy=False)
        return np.concatenate(self.parts).astype(np.float64, copy=False)


def _column(buf: memoryview) -> Column:
    metric = ""
    values, lo, hi = _Doubles(), _Doubles(), _Doubles()
    for num, wt, v in _fields(buf):
        if num == 1 and wt == 2:
            metric = bytes(v).decode()
        elif num == 2:
            values.add(wt, v)
        elif num == 3:
            lo.add(wt, v)
        elif num == 4:
            hi.add(wt, v)
    return Column(metric, values.array(), lo.array(), hi.array())


def parse_chunk(data: bytes) -> Chunk:
    """Decodes one serialized ``HistoryChunk``."""
    buf = memoryview(data)
    chunk = Chunk()
    steps: list[np.ndarray] = []
    for num, wt, v in _fields(buf):
        if num == 2 and wt == 0:
            chunk.layer = int(v)
        elif num == 3:
            if wt == 2:
                steps.append(packed_varints(v))
            elif wt == 0:
                steps.append(np.array([v], dtype=np.uint64))
        elif num == 4 and wt == 2:
            chunk.columns.append(_column(v))
        elif num == 5 and wt == 2:
            chunk.evals.append(pb.EvalEvent.FromString(bytes(v)))
        elif num == 6 and wt == 0:
            chunk.downsampled = bool(v)
    if steps:
        all_steps = steps[0] if len(steps) == 1 else np.concatenate(steps)
        chunk.steps = all_steps.astype(np.int64)
    return chunk


# ---------------------------------------------------------------------------------------------
# Progress messages (WatchJob): step events decoded from their bytes, the rest by protobuf.
# A StepBatch (Progress field 4, asked for with WatchRequest.max_batch) is a run of StepEvent
# records (tag 0x0A), each read the same way; its events' layers are read from the batch's bytes.
#
# A watcher of a fast job takes thousands of step events a second, each with every layer's
# statistics; reading them field by field from protobuf's objects costs ~3 us a layer. A
# LayerStats on the wire is a run of 9-byte records (a one-byte tag, a little-endian double) for
# its non-zero doubles, in field order, then `nonfinite` when it is not zero. Each run's tag
# pattern gets one struct format (cached), so a layer is one unpack_from. Anything else (a
# non-zero `nonfinite`, an unexpected tag) goes through protobuf, which is always right.

_DOUBLE = struct.Struct("<d")
#: Tags of LayerStats' double fields 1..11 (wire type 1).
_LAYER_TAGS = {(n << 3) | 1: n - 1 for n in range(1, 12)}
_Layout = tuple[struct.Struct, "itemgetter[Any]"]
_LAYOUTS: dict[bytes, _Layout | None] = {}


def _layout(tags: bytes) -> _Layout | None:
    """The struct format and the picker into LayerStats' 12 fields for a run of double records."""
    fields = [_LAYER_TAGS.get(t) for t in tags]
    if None in fields or fields != sorted(set(fields)):  # type: ignore[type-var]
        return None
    n = len(fields)
    # Unpacked values, then 0.0 (an absent double) and 0 (nonfinite, absent here).
    pick = [fields.index(f) if f in fields else n for f in range(11)] + [n + 1]
    return struct.Struct("<" + "xd" * n), itemgetter(*pick)


def _step_body(data: bytes, i: int, end: int) -> tuple[tuple[LayerStats, ...], tuple[Histogram, ...]]:
    """A StepEvent's layers and histograms, from its bytes (checked by :func:`_step` already)."""
    layers: list[LayerStats] = []
    hists: list[Histogram] = []
    layouts = _LAYOUTS
    new = tuple.__new__
    while i < end:
        tag = data[i]
        i += 1
        if tag == 0x32 or tag == 0x3A:
            ln = data[i]
            if ln < 0x80:
                i += 1
            else:
                ln, i = _varint(data, i)
            if tag == 0x3A:
                hists.append(Histogram.from_pb(pb.Histogram.FromString(data[i : i + ln])))
            else:
                layout = None
                if ln % 9 == 0:
                    tags = data[i : i + ln : 9]
                    if tags in layouts:
                        layout = layouts[tags]
                    else:
                        layout = layouts[tags] = _layout(tags)
                if layout is None:
                    layers.append(LayerStats.from_pb(pb.LayerStats.FromString(data[i : i + ln])))
                else:
                    layers.append(new(LayerStats, layout[1](layout[0].unpack_from(data, i) + (0.0, 0))))
            i += ln
        elif tag == 0x08:
            _, i = _varint(data, i)
        else:
            i += 8
    return tuple(layers), tuple(hists)


def _step(data: bytes, i: int, end: int) -> StepEvent | None:
    """A StepEvent's scalars now and its layers when first read; None if its bytes hold anything
    but the fields this reader knows (then protobuf reads it)."""
    start = i
    step = 0
    loss = accuracy = lr = grad_norm = 0.0
    unpack = _DOUBLE.unpack_from
    while i < end:
        tag = data[i]
        i += 1
        if tag == 0x32 or tag == 0x3A:  # layers, histograms: skipped until read
            ln = data[i]
            if ln < 0x80:
                i += 1 + ln
            else:
                ln, i = _varint(data, i)
                i += ln
        elif tag == 0x08:
            step, i = _varint(data, i)
        elif tag == 0x11:
            loss = unpack(data, i)[0]
            i += 8
        elif tag == 0x19:
            accuracy = unpack(data, i)[0]
            i += 8
        elif tag == 0x21:
            lr = unpack(data, i)[0]
            i += 8
        elif tag == 0x29:
            grad_norm = unpack(data, i)[0]
            i += 8
        else:
            return None
    if i != end:
        return None
    return StepEvent.lazy(step, loss, accuracy, lr, grad_norm, lambda: _step_body(data, start, end))


def _step_batch(data: bytes, i: int, end: int) -> list[StepEvent] | None:
    """A StepBatch's steps, each as :func:`_step` reads it (protobuf for one it does not); None if
    the batch holds anything but its steps (then protobuf reads the whole message)."""
    steps: list[StepEvent] = []
    append = steps.append
    while i < end:
        if data[i] != 0x0A:
            return None
        ln = data[i + 1]
        if ln < 0x80:
            i += 2
        else:
            ln, i = _varint(data, i + 1)
        j = i + ln
        if j > end:
            return None
        ev = _step(data, i, j)
        append(ev if ev is not None else StepEvent.from_pb(pb.StepEvent.FromString(data[i:j])))
        i = j
    return steps if i == end else None


def parse_progress(data: bytes) -> StepEvent | list[StepEvent] | EvalEvent | pb.Job | None:
    """A serialized ``Progress``: a StepEvent, a StepBatch's steps (a list, in order), an
    EvalEvent, the Job message, or None (no event)."""
    head = data[:1]
    if head == b"\x0a" or head == b"\x22":
        ln, i = _varint(data, 1)
        if i + ln == len(data):
            try:
                ev: StepEvent | list[StepEvent] | None
                ev = _step(data, i, i + ln) if head == b"\x0a" else _step_batch(data, i, i + ln)
            except (IndexError, ValueError, struct.error):
                ev = None
            if ev is not None:
                return ev
    msg = pb.Progress.FromString(data)
    kind = msg.WhichOneof("event")
    if kind == "step":
        return StepEvent.from_pb(msg.step)
    if kind == "steps":
        return [StepEvent.from_pb(s) for s in msg.steps.steps]
    if kind == "eval":
        return EvalEvent.from_pb(msg.eval)
    if kind == "job":
        job: pb.Job = msg.job
        return job
    return None
