"""Sweeps: a base job crossed with axes, their progress, and the server's report as DataFrames."""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._proto import gradlab_pb2 as pb
from .errors import DeadlineExceeded
from .jobs import Job
from .models import TERMINAL, Axis, JobCounts, JobSpec, enum_name, ms_time

if TYPE_CHECKING:
    from ._connection import Connection

#: Axis fields whose values are numbers: the report's frames hold them as such.
_INT_AXES = {"depth", "width", "batch", "steps", "seed"}
_FLOAT_AXES = {"lr", "sigma_w", "sigma_b"}


def axis_value(field: str, text: str) -> Any:
    """An axis value as the report's frames hold it: int, float or the text."""
    try:
        if field in _INT_AXES:
            return int(text)
        if field in _FLOAT_AXES:
            return float(text)
    except ValueError:
        pass
    return text


@dataclass(frozen=True, slots=True)
class SweepEvent:
    """The sweep as it is: first when watching starts, and last once every job has ended."""

    sweep: Sweep
    counts: JobCounts


@dataclass(frozen=True, slots=True)
class SweepJobEvent:
    """One of the sweep's jobs in its current state (replayed at the start, then at each change),
    with the sweep's counts at that moment."""

    job: Job
    counts: JobCounts


#: What :meth:`Sweep.watch` yields.
SweepProgress = SweepEvent | SweepJobEvent


class Sweep:
    """A sweep as the server last described it: :attr:`id`, :attr:`name`, :attr:`state`,
    :attr:`counts`, :attr:`base` (the base job's spec) and :attr:`axes`."""

    def __init__(self, conn: Connection, msg: pb.Sweep) -> None:
        self._conn = conn
        self._set(msg)

    def _set(self, msg: pb.Sweep) -> None:
        self._msg = msg
        self.id: int = msg.id
        self.name: str = msg.spec.name
        self.state: str = enum_name(pb.SweepState, msg.state, "SWEEP_STATE_")
        self.counts: JobCounts = JobCounts.from_pb(msg.counts)
        self.base: JobSpec = JobSpec.from_pb(msg.spec.base)
        self.axes: tuple[Axis, ...] = tuple(Axis(a.field, tuple(a.values)) for a in msg.spec.axes)
        self.created: _dt.datetime | None = ms_time(msg.created_ms)
        self.cancelled: _dt.datetime | None = ms_time(msg.cancelled_ms)
        self.finished: _dt.datetime | None = ms_time(msg.finished_ms)

    @property
    def done(self) -> bool:
        """True once every job has ended."""
        return self.state in TERMINAL

    @property
    def proto(self) -> pb.Sweep:
        """The server's message itself."""
        return self._msg

    def __repr__(self) -> str:
        c = self.counts
        return f"<Sweep {self.id} {self.name!r}: {self.state}, {c.done}/{c.total} jobs done>"

    def refresh(self) -> Sweep:
        """Asks the server for the sweep as it is now; returns this sweep, updated."""
        self._set(self._conn.unary("GetSweep", pb.SweepId(id=self.id)))
        return self

    def cancel(self) -> Sweep:
        """Cancels every unfinished job of the sweep; returns it, updated."""
        self._set(self._conn.unary("CancelSweep", pb.SweepId(id=self.id)))
        return self

    def delete(self, cancel: bool = False) -> int:
        """Deletes the sweep and all its jobs with everything they stored, all or none; returns how
        many jobs went. A sweep with a queued or running job raises :class:`gradlab.FailedPrecondition`
        unless ``cancel``, which cancels its unfinished jobs first."""
        answer = self._conn.unary("DeleteSweep", pb.DeleteSweepRequest(id=self.id, cancel=cancel))
        return int(answer.jobs_deleted)

    def watch(self) -> Iterator[SweepProgress]:
        """A :class:`SweepEvent`, every job's current state (:class:`SweepJobEvent`), then each
        change live, and a last SweepEvent once every job has ended (then the iteration stops)."""
        for msg in self._conn.stream("WatchSweep", pb.SweepId(id=self.id)):
            counts = JobCounts.from_pb(msg.counts)
            if msg.WhichOneof("event") == "sweep":
                self._set(msg.sweep)
                yield SweepEvent(Sweep(self._conn, msg.sweep), counts)
            elif msg.WhichOneof("event") == "job":
                yield SweepJobEvent(Job(self._conn, msg.job), counts)

    def wait(self, timeout: float | None = None) -> Sweep:
        """Blocks until every job has ended; returns the sweep, updated. Raises
        :class:`gradlab.DeadlineExceeded` (a TimeoutError) when ``timeout`` seconds pass first."""
        start = time.monotonic()
        try:
            for msg in self._conn.stream("WatchSweep", pb.SweepId(id=self.id), timeout=timeout):
                if msg.WhichOneof("event") == "sweep":
                    self._set(msg.sweep)
                    if self.done:
                        return self
        except DeadlineExceeded:
            pass
        if self.refresh().done:
            return self
        raise DeadlineExceeded(
            f"sweep {self.id} has {self.counts.done}/{self.counts.total} jobs done after "
            f"{time.monotonic() - start:.1f} s",
            server=self._conn.server,
        )

    def jobs(self, **filters: Any) -> list[Job]:
        """The sweep's jobs (oldest first, in axis order), filtered as :meth:`Client.jobs` filters."""
        from .client import list_jobs

        filters.setdefault("oldest_first", True)
        return list_jobs(self._conn, sweep=self.id, **filters)

    def report(self, margin: float | None = None) -> SweepReport:
        """The server's report over the finished jobs (``GetSweepReport``): per cell, each
        activation's trainable depth (within ``margin`` of the shallow accuracy, default 0.05),
        and the blog post's claims checked."""
        req = pb.SweepReportRequest(sweep_id=self.id)
        if margin is not None:
            req.margin = margin
        return SweepReport(self._conn.unary("GetSweepReport", req))


def _opt(msg: Any, name: str) -> Any:
    return getattr(msg, name) if msg.HasField(name) else None


def _values(values: Any) -> dict[str, Any]:
    return {v.field: axis_value(v.field, v.value) for v in values}


def _claim_text(kind: str, depth: int) -> str:
    return {"at_most": f"<= {depth}", "at_least": f">= {depth}"}.get(kind, kind)


class SweepReport:
    """A sweep's report as the server computed it, with its tables as DataFrames.

    Attributes:
        cells: one row per cell (the axes but seed and lr, as columns), with jobs_total,
            jobs_finished, best_lr, test_accuracy (mean), test_accuracy_std, n, test_loss,
            test_loss_std, nonfinite_test_loss, one ``verdict_<name>`` count column per verdict,
            ratio_at_init, ratio_at_end, predicted_ratio, chi1_mean, and ``accuracy_lr=<lr>``
            (the mean test accuracy at each lr of the grid).
        trainable: one row per activation and group (e.g. init): reference_accuracy,
            trainable_depth (<NA>: none), deepest_swept, recovered_at.
        depth_points: the depths behind ``trainable``: mean_test_accuracy and within_margin.
        claims: one row per claim of the post: activation, claim (``<= 2``), supported, verdict
            (supported, not_supported, or not_measured: nothing finished to measure it against), measured
            (``lecun_normal 2 of 16, ...``), note.
        rules: the rules the figures follow, in words.
    """

    def __init__(self, msg: pb.SweepReport) -> None:
        self.proto = msg
        self.sweep_id: int = msg.sweep_id
        self.sweep: str = msg.sweep
        self.state: str = enum_name(pb.SweepState, msg.state, "SWEEP_STATE_")
        self.cell_axes: tuple[str, ...] = tuple(msg.cell_axes)
        self.lr_is_axis: bool = msg.lr_is_axis
        self.margin: float = msg.margin
        self.steps: int | None = _opt(msg, "steps")
        self.jobs_total: int = msg.jobs_total
        self.jobs_finished: int = msg.jobs_finished
        self.jobs_unmatched: int = msg.jobs_unmatched
        self.rules: tuple[str, ...] = tuple(msg.rules)
        self.cells = self._cells(msg)
        self.trainable, self.depth_points = self._trainable(msg)
        self.claims = self._claims(msg)

    def __repr__(self) -> str:
        held = int(self.claims["supported"].sum()) if len(self.claims) else 0
        return (
            f"<SweepReport of sweep {self.sweep_id} {self.sweep!r}: {self.jobs_finished}/{self.jobs_total} jobs "
            f"finished, {len(self.cells)} cells, {held} of {len(self.claims)} claims supported>"
        )

    def _cells(self, msg: pb.SweepReport) -> pd.DataFrame:
        verdicts = sorted({k for c in msg.cells for k in c.verdicts})
        lrs = list(dict.fromkeys(lr.lr for c in msg.cells for lr in c.by_lr))
        rows = []
        for c in msg.cells:
            acc = c.test_accuracy if c.HasField("test_accuracy") else None
            loss = c.test_loss if c.HasField("test_loss") else None
            row = _values(c.values)
            row.update(
                jobs_total=c.jobs_total,
                jobs_finished=c.jobs_finished,
                best_lr=float(c.best_lr) if c.HasField("best_lr") else np.nan,
                test_accuracy=acc.mean if acc else np.nan,
                test_accuracy_std=acc.std if acc else np.nan,
                n=acc.n if acc else 0,
                test_loss=loss.mean if loss else np.nan,
                test_loss_std=loss.std if loss else np.nan,
                nonfinite_test_loss=c.nonfinite_test_loss,
            )
            row.update({f"verdict_{v}": c.verdicts.get(v, 0) for v in verdicts})
            for name in ("ratio_at_init", "ratio_at_end", "predicted_ratio", "chi1_mean"):
                row[name] = getattr(c, name) if c.HasField(name) else np.nan
            by_lr = {lr.lr: lr for lr in c.by_lr}
            for lr in lrs:
                r = by_lr.get(lr)
                row[f"accuracy_lr={lr}"] = r.mean_test_accuracy if r and r.HasField("mean_test_accuracy") else np.nan
            rows.append(row)
        columns = list(self.cell_axes) + [
            "jobs_total", "jobs_finished", "best_lr", "test_accuracy", "test_accuracy_std", "n", "test_loss",
            "test_loss_std", "nonfinite_test_loss", *[f"verdict_{v}" for v in verdicts], "ratio_at_init",
            "ratio_at_end", "predicted_ratio", "chi1_mean", *[f"accuracy_lr={lr}" for lr in lrs],
        ]  # fmt: skip
        return pd.DataFrame(rows, columns=columns)

    def _trainable(self, msg: pb.SweepReport) -> tuple[pd.DataFrame, pd.DataFrame]:
        rows, points = [], []
        group_cols: list[str] = []
        for t in msg.trainable:
            group = _values(t.group)
            group_cols += [k for k in group if k not in group_cols and k != "activation"]
            rows.append(
                {
                    "activation": t.activation,
                    **group,
                    "reference_accuracy": t.reference_accuracy if t.HasField("reference_accuracy") else np.nan,
                    "trainable_depth": _opt(t, "trainable_depth"),
                    "deepest_swept": t.deepest_swept,
                    "recovered_at": list(t.recovered_at),
                }
            )
            for p in t.points:
                points.append(
                    {
                        "activation": t.activation,
                        **group,
                        "depth": p.depth,
                        "mean_test_accuracy": p.mean_test_accuracy if p.HasField("mean_test_accuracy") else np.nan,
                        "within_margin": p.within_margin,
                    }
                )
        cols = ["activation", *group_cols]
        trainable = pd.DataFrame(
            rows, columns=[*cols, "reference_accuracy", "trainable_depth", "deepest_swept", "recovered_at"]
        )
        trainable["trainable_depth"] = trainable["trainable_depth"].astype("Int64")
        depth_points = pd.DataFrame(points, columns=[*cols, "depth", "mean_test_accuracy", "within_margin"])
        return trainable, depth_points

    def _claims(self, msg: pb.SweepReport) -> pd.DataFrame:
        rows = []
        for c in msg.claims:
            measured = []
            for m in c.measured:
                group = " ".join(v.value for v in m.group)
                depth = str(m.trainable_depth) if m.HasField("trainable_depth") else "none"
                measured.append(f"{group} {depth} of {m.deepest_swept}".strip())
            rows.append(
                {
                    "activation": c.activation,
                    "claim": _claim_text(c.claimed_kind, c.claimed_depth),
                    "claimed_kind": c.claimed_kind,
                    "claimed_depth": c.claimed_depth,
                    "supported": c.supported,
                    "verdict": c.verdict or ("supported" if c.supported else "not_supported"),
                    "measured": ", ".join(measured),
                    "note": c.note,
                }
            )
        return pd.DataFrame(
            rows,
            columns=["activation", "claim", "claimed_kind", "claimed_depth", "supported", "verdict", "measured", "note"],
        )
