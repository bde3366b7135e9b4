"""A training job on a gradlab server: its state, progress events, history, cancellation, names,
labels and deletion."""

from __future__ import annotations

import datetime as _dt
import os
import pathlib
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from . import _histograms, _history, _spec
from ._proto import gradlab_pb2 as pb
from ._wire import parse_chunk, parse_progress
from .errors import DeadlineExceeded
from .models import TERMINAL, Checkpoint, EvalEvent, JobSpec, StepEvent, Summary, enum_name, ms_time

if TYPE_CHECKING:
    from ._connection import Connection

#: ``from_step`` past every step: a watch that replays nothing and skips live steps (state only).
_NO_STEPS = 2**63 - 1

#: The most steps :meth:`Job.watch` asks for in one message. grpcio takes ~70-90 us a message
#: whatever its size, more than a fast job takes a step; the server batches only steps already
#: waiting (a replay, a watcher behind the job), so a watcher keeping up still gets each step at once.
_MAX_BATCH = 1024
#: Bytes of a batch the request aims under (far below the client's receive limit): a step is
#: estimated at _LAYER_BYTES a layer, about a layer's statistics and a histogram at their largest.
_BATCH_BYTES = 64 << 20
_LAYER_BYTES = 512


def _max_batch(spec: JobSpec) -> int:
    """Steps a message for a watch of a job of this spec: _MAX_BATCH, fewer for deep nets."""
    per_step = 64 + (len(spec.hidden) + 1) * _LAYER_BYTES
    return max(1, min(_MAX_BATCH, _BATCH_BYTES // per_step))


@dataclass(frozen=True, slots=True)
class StateEvent:
    """The job as it is: first when watching starts, then after each change of state (the last one
    is terminal)."""

    job: Job


#: What :meth:`Job.watch` yields.
JobEvent = StateEvent | StepEvent | EvalEvent


class Job:
    """A job as the server last described it; :meth:`refresh` asks again.

    Attributes mirror the server's ``Job``: :attr:`id`, :attr:`state` (``queued``, ``running``,
    ``succeeded``, ``failed`` or ``cancelled``), :attr:`spec` (every default filled in),
    :attr:`summary` (once finished), :attr:`verdict`, :attr:`steps_done`, :attr:`error`,
    :attr:`worker` and :attr:`attempt` (who trains it and how many claims so far),
    :attr:`resumed_from` (the checkpoint's step the latest claim went on from, None if it started
    at step 0), :attr:`parent_id` and :attr:`fork_step` (a fork's parent and step; None for
    others) and :attr:`checkpoints` (stored ones, oldest first; filled in by
    :meth:`Client.job` and :meth:`refresh`, empty in listings).
    """

    def __init__(self, conn: Connection, msg: pb.Job) -> None:
        self._conn = conn
        self._set(msg)

    def _set(self, msg: pb.Job) -> None:
        self._msg = msg
        self.id: int = msg.id
        self.state: str = enum_name(pb.JobState, msg.state, "JOB_STATE_")
        self.spec: JobSpec = JobSpec.from_pb(msg.spec)
        self.summary: Summary | None = Summary.from_pb(msg.summary) if msg.HasField("summary") else None
        self.steps_done: int = msg.steps_done
        self.total_steps: int = msg.total_steps
        self.error: str = msg.error
        self.sweep_id: int | None = msg.sweep_id if msg.HasField("sweep_id") else None
        self.worker: str | None = msg.worker or None
        self.attempt: int = msg.attempt
        self.resumed_from: int | None = msg.resumed_from if msg.HasField("resumed_from") else None
        self.checkpoints: list[Checkpoint] = [Checkpoint.from_pb(c) for c in msg.checkpoints]
        self.parent_id: int | None = msg.parent_id if msg.HasField("parent_id") else None
        self.fork_step: int | None = msg.fork_step if msg.HasField("fork_step") else None
        self.created: _dt.datetime | None = ms_time(msg.created_ms)
        self.started: _dt.datetime | None = ms_time(msg.started_ms)
        self.finished: _dt.datetime | None = ms_time(msg.finished_ms)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def labels(self) -> dict[str, str]:
        """The job's labels (a copy of :attr:`spec.labels <JobSpec.labels>`); :meth:`update` changes them."""
        return dict(self.spec.labels)

    @property
    def verdict(self) -> str | None:
        """``healthy``, ``vanishing``, ``exploding``, ``dead``, ``not_learning`` or ``collapsing``; None until finished."""
        return self.summary.verdict if self.summary else None

    @property
    def done(self) -> bool:
        """True once the job succeeded, failed or was cancelled."""
        return self.state in TERMINAL

    @property
    def proto(self) -> pb.Job:
        """The server's message itself."""
        return self._msg

    def __repr__(self) -> str:
        spec = self.spec
        shape = f"{spec.depth}x{spec.width}" if spec.width else ",".join(map(str, spec.hidden))
        verdict = f", verdict={self.verdict!r}" if self.verdict else ""
        return (
            f"<Job {self.id} {spec.name!r} {spec.activation} {shape}: {self.state}, "
            f"{self.steps_done}/{self.total_steps} steps{verdict}>"
        )

    def refresh(self) -> Job:
        """Asks the server for the job as it is now; returns this job, updated."""
        self._set(self._conn.unary("GetJob", pb.JobId(id=self.id)))
        return self

    def cancel(self) -> Job:
        """Cancels the job: a queued one never starts, a running one stops within a step keeping its
        history. Returns it, updated. A job that already ended raises FailedPrecondition."""
        self._set(self._conn.unary("CancelJob", pb.JobId(id=self.id)))
        return self

    def update(
        self,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
        remove_labels: Iterable[str] = (),
    ) -> Job:
        """Renames the job and sets or removes labels, in one call (any state, even running);
        nothing else of it changes. Returns it, updated.

        Args:
            name: the new name (None: keep it).
            labels: labels to add, or to give a new value (values are sent as ``str(v)``).
            remove_labels: keys of labels to remove (a key the job does not have is no error).

        A label key must be 1-128 characters without ``=``, ``,`` or spaces (``client.jobs(label=
        "key=value")`` reads it back); a bad one, or a key both set and removed, raises
        :class:`gradlab.InvalidArgument` with ``field == "labels"``.
        """
        if labels is not None and not isinstance(labels, Mapping):
            raise TypeError(f"labels: expected a mapping of str to str, got {labels!r}")
        if isinstance(remove_labels, (str, bytes)):
            raise TypeError(f"remove_labels: expected a list of keys, got {remove_labels!r}")
        req = pb.UpdateJobRequest(
            id=self.id,
            set_labels={str(k): str(v) for k, v in (labels or {}).items()},
            remove_labels=[str(k) for k in remove_labels],
        )
        if name is not None:
            req.name = name
        self._set(self._conn.unary("UpdateJob", req))
        return self

    def delete(self, cancel: bool = False) -> None:
        """Deletes the job from the server with everything it stored (history, histograms,
        evaluations); its id is not given to another job. A queued or running job raises
        :class:`gradlab.FailedPrecondition` unless ``cancel``, which cancels it first. Afterwards
        every call about the job raises :class:`gradlab.NotFound`; this object keeps its last state."""
        self._conn.unary("DeleteJob", pb.DeleteJobRequest(id=self.id, cancel=cancel))

    def export(self, path: str | os.PathLike[str], step: int | None = None, format: str | None = None) -> int:
        """Writes the job's trained network to ``path``: its newest checkpoint at or before
        ``step`` (the newest when None) as a ``.safetensors`` or ``.npz`` file (``format``, else
        the extension). Tensors ``layer{i}.weight`` (float32 ``[out, in]``: ``a = act(x @ W.T + b)``),
        ``layer{i}.bias``, and ``input.mean`` / ``input.scale`` (float64) when the job standardized
        its data; metadata ``format``, ``job``, ``step``, ``activation``, ``output_activation``,
        ``layers``, ``spec`` (JSON; in an .npz the ``__metadata__`` array holds it as UTF-8 JSON).
        Returns the checkpoint's step. A job with no such checkpoint raises
        :class:`gradlab.FailedPrecondition` (a finished job keeps them only if submitted with
        ``keep_checkpoints=True``). The file appears whole or not at all."""
        target = pathlib.Path(path)
        name = (format or target.suffix.lstrip(".")).lower()
        formats = {"safetensors": pb.WEIGHTS_FORMAT_SAFETENSORS, "npz": pb.WEIGHTS_FORMAT_NPZ}
        if name not in formats:
            raise ValueError(f"{target}: name it .safetensors or .npz, or pass format='safetensors' or 'npz'")
        req = pb.ExportRequest(job_id=self.id, format=formats[name])
        if step is not None:
            req.step = step
        tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
        got_step, total, written = 0, 0, 0
        try:
            with open(tmp, "wb") as f:
                for chunk in self._conn.stream("ExportWeights", req):
                    f.write(chunk.data)
                    written += len(chunk.data)
                    got_step, total = chunk.step, chunk.total_bytes
            if written != total:
                raise OSError(f"the server sent {written} of {total} bytes")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return int(got_step)

    def fork(self, at_step: int, **changes: Any) -> Job:
        """A new job (queued) that starts from this job's newest checkpoint at or before
        ``at_step`` with its training settings changed: keyword arguments as :meth:`Client.submit`
        takes them (``lr``, ``optimizer``, ``schedule``, ``steps``, ``clip_norm``,
        ``weight_decay``, ``name``, ``labels`` (added to this job's), recording and checkpoint
        settings). A change of the network, its data or their order raises
        :class:`gradlab.InvalidArgument` naming the field; no such checkpoint,
        :class:`gradlab.FailedPrecondition`. Its history reads as one series from step 0 (this
        job's part shared), and with nothing changed its steps after the fork are this job's."""
        req = pb.ForkRequest(job_id=self.id, at_step=at_step, changes=_spec.job_spec("fork", **changes))
        return Job(self._conn, self._conn.unary("ForkJob", req))

    def predict(self, inputs: npt.ArrayLike, step: int | None = None) -> npt.NDArray[np.float32]:
        """The network's outputs (logits for cross-entropy) for raw examples, one a row,
        standardized as the job's training data was, at its newest checkpoint at or before
        ``step`` (the one :meth:`export` would write): a float32 array of shape
        ``(rows, outputs)``."""
        x = np.asarray(inputs, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2:
            raise ValueError(f"inputs: expected rows of features (2 dimensions), got shape {x.shape}")
        req = pb.PredictRequest(job_id=self.id, inputs=x.ravel().tolist(), input_dim=x.shape[1])
        if step is not None:
            req.step = step
        r = self._conn.unary("Predict", req)
        return np.asarray(r.values, dtype=np.float32).reshape(r.rows, r.outputs)

    def watch(self, from_step: int = 0) -> Iterator[JobEvent]:
        """The job's progress: a :class:`StateEvent` first, the stored steps and evaluations from
        ``from_step`` (replay), then live ones as they are stored, and a final StateEvent when the
        job ends (then the iteration stops). Each StateEvent also updates this job. Closing the
        iterator early (``break``) hangs up. Steps already waiting (a replay, a job faster than the
        loop) come from the server many to a message; they are yielded one at a time all the same."""
        req = pb.WatchRequest(job_id=self.id, from_step=from_step, max_batch=_max_batch(self.spec))
        for data in self._conn.raw_stream("WatchJob", req):
            ev = parse_progress(data)
            if isinstance(ev, list):
                yield from ev
            elif isinstance(ev, pb.Job):
                self._set(ev)
                yield StateEvent(Job(self._conn, ev))
            elif ev is not None:
                yield ev

    def wait(self, timeout: float | None = None) -> Job:
        """Blocks until the job ends; returns it, updated (check :attr:`state`: a failed or
        cancelled job is returned too). Raises :class:`gradlab.DeadlineExceeded` (a TimeoutError)
        when ``timeout`` seconds pass first."""
        start = time.monotonic()
        req = pb.WatchRequest(job_id=self.id, from_step=_NO_STEPS)
        try:
            for msg in self._conn.stream("WatchJob", req, timeout=timeout):
                if msg.WhichOneof("event") == "job":
                    self._set(msg.job)
                    if self.done:
                        return self
        except DeadlineExceeded:
            pass
        self.refresh()
        if self.done:
            return self
        waited = time.monotonic() - start
        raise DeadlineExceeded(
            f"job {self.id} is still {self.state} ({self.steps_done}/{self.total_steps} steps) after {waited:.1f} s",
            server=self._conn.server,
        )

    def history(
        self,
        layers: int | Sequence[int] | None = None,
        metrics: str | Sequence[str] | None = None,
        steps: tuple[int | None, int | None] | range | slice | None = None,
        max_points: int | None = None,
        wide: bool = False,
    ) -> pd.DataFrame:
        """The job's recorded series as a DataFrame, streamed (any length).

        Args:
            layers: layer indices (0 = first hidden layer; the last is the output layer); default all.
            metrics: grad_norm, bias_grad_norm, err_norm, grad_mean_abs, grad_max_abs, weight_norm,
                update_ratio, act_mean, act_std, saturated, dead, nonfinite, and per step loss,
                accuracy, lr, global_grad_norm; default all.
            steps: ``(first, last)`` inclusive, either end None; or a ``range``/``slice``.
            max_points: at most this many points per series, keeping each bucket's last value
                (``value``) and its extremes (``min``, ``max``).
            wide: one row per step and one column per (layer, metric) instead.

        Returns:
            Long format (the default): columns ``step``, ``layer`` (<NA> for the per-step metrics),
            ``metric`` (categorical), ``value``, and ``min``/``max`` when downsampled; rows in the
            order and with the values of ``gradlab history --format csv``. ``df.pivot(index="layer",
            columns="step", values="value")`` of one metric is a heat map's matrix. The read covers the
            steps stored when it starts (a running job's so far); nothing stored in the selection
            gives an empty frame.
        """
        req = _history.request(self.id, layers, metrics, steps, max_points)
        chunks = (parse_chunk(b) for b in self._conn.raw_stream("StreamHistory", req))
        if wide:
            return _history.wide(chunks)
        builder = _history.FrameBuilder()
        for c in chunks:
            builder.add(c)
        return builder.frame()

    def histograms(
        self,
        layers: int | Sequence[int] | None = None,
        from_step: int | None = None,
        to_step: int | None = None,
        max_steps: int | None = None,
    ) -> pd.DataFrame:
        """The job's log10|dL/dW| histograms over time as a long DataFrame (``GetHistograms``).

        A job records them every ``histogram_every`` steps (a :meth:`Client.submit` keyword; 0, the
        default, never): at each such step, for each layer, how many of its weights' gradients fall
        in each bin of a fixed log10 grid, the same for every step, layer and job. Bin i covers
        ``10**log10_lo <= |g| < 10**log10_hi`` with ``log10_lo = -12 + i/4`` (4 bins a decade, 64
        bins up to 10**4).

        Args:
            layers: layer indices (0 = first hidden layer; the last is the output layer); default all.
                An index past the last layer raises :class:`gradlab.InvalidArgument`.
            from_step, to_step: the inclusive range of steps; default all.
            max_steps: at most this many recorded steps, evenly spread over those in the range (the
                first and last kept): a subset of the recorded steps, not sums over them.

        Returns:
            One row per bin per (step, layer), sorted by step, then layer (in the order asked), then
            bin: columns ``step``, ``layer``, ``bin`` (0..63), ``log10_lo`` and ``log10_hi`` (the
            bin's edges as log10|g|, floats), ``count`` (int64) and ``kind`` (categorical). Every bin
            is present, empty ones with count 0. The weights outside the grid follow each (step,
            layer)'s bins as four rows with ``bin == -1`` and ``kind``:

            - ``"zeros"``: exact zeros (``log10_lo == log10_hi == -inf``),
            - ``"underflow"``: below 10**-12 but not zero (``-inf`` to ``-12``),
            - ``"overflow"``: 10**4 or more (``4`` to ``inf``),
            - ``"nonfinite"``: NaN or infinite (edges NaN),

            while the bins' rows have ``kind == "bin"``. So the counts of a (step, layer) add up to
            the layer's weight count (fan_in * fan_out), and ``df[df.kind == "bin"]`` is the grid
            alone. A job without histograms (or a range with none) gives an empty frame with these
            columns.
        """
        req = _histograms.request(self.id, layers, from_step, to_step, max_steps)
        return _histograms.frame(self._conn.unary("GetHistograms", req))

    def evals(self) -> pd.DataFrame:
        """The held-out evaluations: step, test_loss, test_accuracy."""
        req = pb.HistoryRequest(job_id=self.id, metrics=["lr"])
        evals: list[pb.EvalEvent] = []
        for b in self._conn.raw_stream("StreamHistory", req):
            evals.extend(parse_chunk(b).evals)
        return _history.evals_frame(evals)
