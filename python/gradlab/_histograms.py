"""Gradient histograms (``GetHistograms``) as a long pandas frame: a row per bin per (step, layer)."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from ._proto import gradlab_pb2 as pb
from .errors import InvalidArgument

#: The ``kind`` of a row: a bin of the log10|g| grid, or one of the counts outside it.
KINDS = ("bin", "zeros", "underflow", "overflow", "nonfinite")
#: The frame's columns, in order.
COLUMNS = ("step", "layer", "bin", "log10_lo", "log10_hi", "count", "kind")
#: ``bin`` of the rows that are not bins of the grid.
OUTSIDE = -1


def _whole(name: str, value: object, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected a whole number, got {value!r}")
    v = int(value)
    if v < 0:
        raise InvalidArgument(f"{name}: must be a whole number >= 0, got {v}", field=name)
    if v >= limit:
        raise InvalidArgument(f"{name}: {v} is too large", field=name)
    return v


def request(
    job_id: int,
    layers: int | Sequence[int] | None,
    from_step: int | None,
    to_step: int | None,
    max_steps: int | None,
) -> pb.HistogramsRequest:
    """The HistogramsRequest for ``Job.histograms``'s arguments; a negative number raises
    :class:`gradlab.InvalidArgument` naming the argument (the server checks the rest)."""
    req = pb.HistogramsRequest(job_id=job_id)
    if layers is not None:
        if isinstance(layers, numbers.Integral) and not isinstance(layers, bool):
            ls: Iterable[object] = [layers]
        elif isinstance(layers, Iterable) and not isinstance(layers, (str, bytes)):
            ls = layers
        else:
            raise TypeError(f"layers: expected a layer index or a sequence of them, got {layers!r}")
        req.layers.extend([_whole("layers", x, 2**32) for x in ls])
    if from_step is not None:
        req.from_step = _whole("from_step", from_step, 2**64)
    if to_step is not None:
        req.to_step = _whole("to_step", to_step, 2**64)
    if max_steps is not None:
        req.max_steps = _whole("max_steps", max_steps, 2**32)
    return req


def _grid(log10_lo: int, per_decade: int, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """bin, log10_lo and log10_hi of one histogram's rows: its ``bins`` bins, then zeros,
    underflow, overflow and nonfinite."""
    per = per_decade or 1
    idx = np.arange(bins, dtype=np.int64)
    lo = log10_lo + idx / per
    top = log10_lo + bins / per
    inf = np.inf
    b = np.concatenate([idx, np.full(4, OUTSIDE, dtype=np.int64)])
    lo_all = np.concatenate([lo, [-inf, -inf, top, np.nan]])
    hi_all = np.concatenate([log10_lo + (idx + 1) / per, [-inf, float(log10_lo), inf, np.nan]])
    return b, lo_all, hi_all


def frame(answer: pb.Histograms) -> pd.DataFrame:
    """The long frame of an answer: for each step, each layer (in the answer's order), its bins
    from the smallest magnitude up, then its zeros, underflow, overflow and nonfinite rows."""
    steps = np.array(answer.steps, dtype=np.int64)
    n = len(steps)
    for lh in answer.layers:
        if len(lh.histograms) != n:
            raise ValueError(f"histograms: layer {lh.layer} has {len(lh.histograms)} histograms for {n} steps")
    m = len(answer.layers)
    # Step-major: (step 0, layer a), (step 0, layer b), ..., (step 1, layer a), ...
    hists = [lh.histograms[i] for i in range(n) for lh in answer.layers]
    keys = [(h.log10_lo, h.per_decade, len(h.counts)) for h in hists]
    grids = {k: _grid(*k) for k in set(keys)}
    sizes = np.array([k[2] + 4 for k in keys], dtype=np.int64)
    counts = np.fromiter(
        (c for h in hists for c in (*h.counts, h.zeros, h.underflow, h.overflow, h.nonfinite)),
        dtype=np.int64,
        count=int(sizes.sum()),
    )
    if len(grids) == 1:
        b, lo, hi = grids[keys[0]]
        k = len(hists)
        bins, lows, highs = np.tile(b, k), np.tile(lo, k), np.tile(hi, k)
        kind = np.tile(_kinds(keys[0][2]), k)
    elif grids:
        bins = np.concatenate([grids[k][0] for k in keys])
        lows = np.concatenate([grids[k][1] for k in keys])
        highs = np.concatenate([grids[k][2] for k in keys])
        kind = np.concatenate([_kinds(k[2]) for k in keys])
    else:
        bins, lows, highs, kind = np.empty(0, np.int64), np.empty(0), np.empty(0), np.empty(0, np.int8)
    layer_ids = np.array([lh.layer for lh in answer.layers], dtype=np.int64)
    data: dict[str, object] = {
        "step": np.repeat(np.repeat(steps, m), sizes),
        "layer": np.repeat(np.tile(layer_ids, n), sizes),
        "bin": bins,
        "log10_lo": lows,
        "log10_hi": highs,
        "count": counts,
        "kind": pd.Categorical.from_codes(kind, categories=list(KINDS)),
    }
    return pd.DataFrame(data, columns=list(COLUMNS), copy=False)


def _kinds(bins: int) -> np.ndarray:
    """Codes into KINDS of one histogram's rows."""
    return np.concatenate([np.zeros(bins, np.int8), np.arange(1, 5, dtype=np.int8)])
