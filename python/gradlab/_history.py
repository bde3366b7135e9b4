"""Histories as pandas frames, built from StreamHistory's chunks a column array at a time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._proto import gradlab_pb2 as pb
from ._wire import Chunk

def request(
    job_id: int,
    layers: int | Sequence[int] | None,
    metrics: str | Sequence[str] | None,
    steps: tuple[int | None, int | None] | range | slice | None,
    max_points: int | None,
) -> pb.HistoryRequest:
    """The HistoryRequest for ``Job.history``'s arguments (``steps``: ``(first, last)`` inclusive,
    either end None; or a ``range``/``slice`` with step 1)."""
    req = pb.HistoryRequest(job_id=job_id, max_points=max_points or 0)
    if layers is not None:
        req.layers.extend([layers] if isinstance(layers, int) else list(layers))
    if metrics is not None:
        req.metrics.extend([metrics] if isinstance(metrics, str) else list(metrics))
    if steps is not None:
        lo, hi = _range(steps)
        if lo is not None:
            req.from_step = lo
        if hi is not None:
            req.to_step = hi
    return req


def _range(steps: tuple[int | None, int | None] | range | slice) -> tuple[int | None, int | None]:
    if isinstance(steps, range):
        if steps.step != 1:
            raise ValueError("steps: a range with step 1 (use max_points to thin a history)")
        return steps.start, steps.stop - 1
    if isinstance(steps, slice):
        if steps.step not in (None, 1):
            raise ValueError("steps: a slice with step 1 (use max_points to thin a history)")
        return steps.start, None if steps.stop is None else steps.stop - 1
    lo, hi = steps
    return lo, hi


class FrameBuilder:
    """Gathers chunks into the long frame: a row per (step, layer, metric) in stream order, as
    ``gradlab history --format csv`` writes them (the step scalars, then each layer; within a
    chunk step by step, every metric of a step together)."""

    def __init__(self) -> None:
        self.steps: list[np.ndarray] = []
        self.layers: list[np.ndarray] = []
        self.codes: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        self.mins: list[np.ndarray] = []
        self.maxs: list[np.ndarray] = []
        self.metrics: dict[str, int] = {}
        self.downsampled = False
        self.evals: list[pb.EvalEvent] = []

    def add(self, c: Chunk) -> None:
        self.evals.extend(c.evals)
        self.downsampled |= c.downsampled
        n, k = len(c.steps), len(c.columns)
        for col in c.columns:
            self.metrics.setdefault(col.metric, len(self.metrics))
        if n == 0 or k == 0:
            return
        for col in c.columns:
            if len(col.values) != n:
                raise ValueError(f"history chunk: metric {col.metric} has {len(col.values)} values for {n} steps")
        codes = np.array([self.metrics[col.metric] for col in c.columns], dtype=np.int16)
        self.steps.append(np.repeat(c.steps, k))
        self.codes.append(np.tile(codes, n))
        self.layers.append(np.full(n * k, -1 if c.layer is None else c.layer, dtype=np.int64))
        self.values.append(_interleave([col.values for col in c.columns]))
        if c.downsampled:
            self.mins.append(_interleave([col.min for col in c.columns]))
            self.maxs.append(_interleave([col.max for col in c.columns]))

    def frame(self) -> pd.DataFrame:
        """step (int64), layer (Int64, <NA> for the per-step metrics), metric (categorical), value,
        and min and max when downsampled."""

        def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
            return np.concatenate(parts) if parts else np.empty(0, dtype)

        layer = cat(self.layers, np.int64)
        data: dict[str, object] = {
            "step": cat(self.steps, np.int64),
            "layer": pd.arrays.IntegerArray(layer, layer < 0),
            "metric": pd.Categorical.from_codes(cat(self.codes, np.int16), categories=list(self.metrics)),
            "value": cat(self.values, np.float64),
        }
        if self.downsampled:
            data["min"] = cat(self.mins, np.float64)
            data["max"] = cat(self.maxs, np.float64)
        return pd.DataFrame(data, copy=False)


def _interleave(columns: list[np.ndarray]) -> np.ndarray:
    if len(columns) == 1:
        return columns[0]
    return np.column_stack(columns).ravel()


def wide(chunks: Iterable[Chunk]) -> pd.DataFrame:
    """One row per step, one column per (layer, metric) (the per-step metrics under layer <NA>),
    each series's last value per bucket when downsampled."""
    series: dict[tuple[object, str], tuple[list[np.ndarray], list[np.ndarray]]] = {}
    for c in chunks:
        layer: object = pd.NA if c.layer is None else c.layer
        for col in c.columns:
            steps, values = series.setdefault((layer, col.metric), ([], []))
            if len(c.steps):
                steps.append(c.steps)
                values.append(col.values)
    cols = []
    for (layer, metric), (steps, values) in series.items():
        idx = pd.Index(np.concatenate(steps) if steps else np.empty(0, np.int64), name="step")
        cols.append(pd.Series(np.concatenate(values) if values else np.empty(0), index=idx, name=(layer, metric)))
    if not cols:
        return pd.DataFrame(index=pd.Index([], name="step", dtype=np.int64))
    aligned = all(s.index.equals(cols[0].index) for s in cols[1:])
    if aligned:
        out = pd.DataFrame({s.name: s.to_numpy() for s in cols}, index=cols[0].index)
    else:
        out = pd.concat(cols, axis=1, join="outer").sort_index()
    out.columns = pd.MultiIndex.from_tuples([s.name for s in cols], names=["layer", "metric"])
    return out


def evals_frame(evals: Iterable[pb.EvalEvent]) -> pd.DataFrame:
    """step, test_loss, test_accuracy: one row per evaluation."""
    rows = [(e.step, e.test_loss, e.test_accuracy) for e in evals]
    return pd.DataFrame(
        {
            "step": np.array([r[0] for r in rows], dtype=np.int64),
            "test_loss": np.array([r[1] for r in rows], dtype=np.float64),
            "test_accuracy": np.array([r[2] for r in rows], dtype=np.float64),
        }
    )
