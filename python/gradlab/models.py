"""Plain, typed views of the server's messages: job specs, summaries, progress events, counts."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from ._proto import gradlab_pb2 as pb

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
SweepState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
Verdict = Literal["healthy", "vanishing", "exploding", "dead", "not_learning", "collapsing"]

#: Job states that do not change any more.
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


def enum_name(enum: object, value: int, prefix: str) -> str:
    """``JOB_STATE_SUCCEEDED`` -> ``succeeded``; unknown values as ``unspecified``/``unknown(7)``."""
    try:
        name: str = enum.Name(value)  # type: ignore[attr-defined]
    except ValueError:
        return f"unknown({value})"
    return name.removeprefix(prefix).lower()


def enum_value(enum: object, text: str, prefix: str) -> int:
    """``succeeded`` -> ``JOB_STATE_SUCCEEDED``'s number; ValueError if unknown."""
    return enum.Value(prefix + text.strip().upper())  # type: ignore[attr-defined, no-any-return]


def ms_time(ms: int) -> _dt.datetime | None:
    """Unix milliseconds as an aware UTC datetime; 0 (not yet) as None."""
    return _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.timezone.utc) if ms else None


def _opt(msg: object, name: str) -> float | None:
    return getattr(msg, name) if msg.HasField(name) else None  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Thresholds:
    """The verdict's thresholds (see gradlab's README, "What it measures")."""

    vanish_ratio: float
    explode_ratio: float
    explode_growth: float
    dead_fraction: float
    chance_margin: float
    collapse_ratio: float
    min_learned: float


@dataclass(frozen=True)
class Checkpoint:
    """A stored checkpoint of a job: the whole training state after :attr:`step` steps."""

    step: int
    bytes: int
    created: _dt.datetime | None

    @classmethod
    def from_pb(cls, c: pb.Checkpoint) -> Checkpoint:
        return cls(step=c.step, bytes=c.bytes, created=ms_time(c.created_ms))


@dataclass(frozen=True)
class JobSpec:
    """A job's spec as it runs, every default filled in (the server's answer)."""

    name: str
    labels: dict[str, str]
    activation: str
    output_activation: str
    hidden: tuple[int, ...]
    init: str
    sigma_w: float | None
    sigma_b: float | None
    loss: str
    optimizer: str
    lr: float
    schedule: str
    weight_decay: float
    clip_norm: float | None
    batch: int
    steps: int
    eval_every: int
    dataset: str
    test_fraction: float
    standardize: bool
    seed: int
    record_every: int
    histogram_every: int
    stop_on_nonfinite: bool
    thresholds: Thresholds | None
    checkpoint_every_steps: int = 10_000
    checkpoint_every_seconds: float = 60.0
    checkpoint_keep: int = 2
    keep_checkpoints: bool = False

    @property
    def depth(self) -> int:
        """Number of hidden layers."""
        return len(self.hidden)

    @property
    def width(self) -> int | None:
        """The hidden width when every hidden layer has the same (else None)."""
        return self.hidden[0] if self.hidden and len(set(self.hidden)) == 1 else None

    @classmethod
    def from_pb(cls, s: pb.JobSpec) -> JobSpec:
        t = s.thresholds if s.HasField("thresholds") else None
        return cls(
            name=s.name,
            labels=dict(s.labels),
            activation=s.activation,
            output_activation=s.output_activation,
            hidden=tuple(s.hidden),
            init=s.init,
            sigma_w=_opt(s, "sigma_w"),
            sigma_b=_opt(s, "sigma_b"),
            loss=s.loss,
            optimizer=s.optimizer,
            lr=s.lr,
            schedule=s.schedule,
            weight_decay=s.weight_decay,
            clip_norm=_opt(s, "clip_norm"),
            batch=s.batch,
            steps=s.steps,
            eval_every=s.eval_every,
            dataset=s.dataset,
            test_fraction=s.test_fraction,
            standardize=s.standardize,
            seed=s.seed,
            record_every=s.record_every,
            histogram_every=s.histogram_every,
            stop_on_nonfinite=s.stop_on_nonfinite,
            checkpoint_every_steps=s.checkpoint_every_steps,
            checkpoint_every_seconds=s.checkpoint_every_seconds,
            checkpoint_keep=s.checkpoint_keep,
            keep_checkpoints=s.keep_checkpoints,
            thresholds=Thresholds(
                t.vanish_ratio,
                t.explode_ratio,
                t.explode_growth,
                t.dead_fraction,
                t.chance_margin,
                t.collapse_ratio,
                t.min_learned,
            )
            if t is not None
            else None,
        )


@dataclass(frozen=True)
class MeanField:
    """The mean-field prediction at initialization."""

    sigma_w: float
    sigma_b: float
    q_star: float | None
    fixed_point: str
    chi1: float
    regime: str
    depth_scale: float
    first_last_ratio: float
    layer_ratios: tuple[float, ...]


@dataclass(frozen=True)
class Summary:
    """How a finished job did."""

    steps_done: int
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    verdict: str
    verdict_reason: str
    ratio_at_init: float | None
    ratio_at_end: float | None
    stopped_early: bool
    mean_field: MeanField | None

    @classmethod
    def from_pb(cls, s: pb.Summary) -> Summary:
        m = s.mean_field if s.HasField("mean_field") else None
        return cls(
            steps_done=s.steps_done,
            train_loss=s.train_loss,
            train_accuracy=s.train_accuracy,
            test_loss=s.test_loss,
            test_accuracy=s.test_accuracy,
            verdict=enum_name(pb.Verdict, s.verdict, "VERDICT_"),
            verdict_reason=s.verdict_reason,
            ratio_at_init=_opt(s, "ratio_at_init"),
            ratio_at_end=_opt(s, "ratio_at_end"),
            stopped_early=s.stopped_early,
            mean_field=MeanField(
                m.sigma_w,
                m.sigma_b,
                _opt(m, "q_star"),
                m.fixed_point,
                m.chi1,
                m.regime,
                m.depth_scale,
                m.first_last_ratio,
                tuple(m.layer_ratios),
            )
            if m is not None
            else None,
        )


class LayerStats(NamedTuple):
    """One layer's statistics at one step (layer 0 = first hidden layer; the last is the output)."""

    grad_norm: float
    bias_grad_norm: float
    err_norm: float
    grad_mean_abs: float
    grad_max_abs: float
    weight_norm: float
    update_ratio: float
    act_mean: float
    act_std: float
    saturated: float
    dead: float
    nonfinite: int

    @classmethod
    def from_pb(cls, x: pb.LayerStats) -> LayerStats:
        return cls(
            x.grad_norm,
            x.bias_grad_norm,
            x.err_norm,
            x.grad_mean_abs,
            x.grad_max_abs,
            x.weight_norm,
            x.update_ratio,
            x.act_mean,
            x.act_std,
            x.saturated,
            x.dead,
            x.nonfinite,
        )


@dataclass(frozen=True, slots=True)
class Histogram:
    """log10|g| histogram: bin i covers [10^(log10_lo + i/per_decade), 10^(log10_lo + (i+1)/per_decade))."""

    log10_lo: int
    per_decade: int
    counts: tuple[int, ...]
    zeros: int
    underflow: int
    overflow: int
    nonfinite: int

    @classmethod
    def from_pb(cls, h: pb.Histogram) -> Histogram:
        return cls(h.log10_lo, h.per_decade, tuple(h.counts), h.zeros, h.underflow, h.overflow, h.nonfinite)


class StepEvent:
    """A recorded step: the network after ``step`` updates, its loss, accuracy, learning rate and
    global gradient norm, and every layer's statistics (:attr:`layers`, from the first hidden
    layer to the output layer) and histograms (when the job records them).

    A watcher decodes ``layers`` and ``histograms`` only when they are first read, so following a
    fast job costs little per step unless every step's layers are looked at.
    """

    __slots__ = ("_histograms", "_layers", "_source", "accuracy", "grad_norm", "loss", "lr", "step")

    def __init__(
        self,
        step: int,
        loss: float,
        accuracy: float,
        lr: float,
        grad_norm: float,
        layers: tuple[LayerStats, ...] = (),
        histograms: tuple[Histogram, ...] = (),
    ) -> None:
        self.step = step
        self.loss = loss
        self.accuracy = accuracy
        self.lr = lr
        self.grad_norm = grad_norm
        self._layers: tuple[LayerStats, ...] | None = tuple(layers)
        self._histograms: tuple[Histogram, ...] | None = tuple(histograms)
        self._source: Callable[[], tuple[tuple[LayerStats, ...], tuple[Histogram, ...]]] | None = None

    @classmethod
    def lazy(
        cls,
        step: int,
        loss: float,
        accuracy: float,
        lr: float,
        grad_norm: float,
        source: Callable[[], tuple[tuple[LayerStats, ...], tuple[Histogram, ...]]],
    ) -> StepEvent:
        """An event whose layers and histograms ``source()`` gives when first read."""
        ev = cls.__new__(cls)
        ev.step, ev.loss, ev.accuracy, ev.lr, ev.grad_norm = step, loss, accuracy, lr, grad_norm
        ev._layers = ev._histograms = None
        ev._source = source
        return ev

    def _load(self) -> None:
        assert self._source is not None
        self._layers, self._histograms = self._source()
        self._source = None

    @property
    def layers(self) -> tuple[LayerStats, ...]:
        """Every layer's statistics: hidden layers from the input side, then the output layer."""
        if self._layers is None:
            self._load()
        return self._layers  # type: ignore[return-value]

    @property
    def histograms(self) -> tuple[Histogram, ...]:
        """log10|g| histograms per layer, at the steps the job records them (else empty)."""
        if self._histograms is None:
            self._load()
        return self._histograms  # type: ignore[return-value]

    def _key(self) -> tuple[object, ...]:
        return (self.step, self.loss, self.accuracy, self.lr, self.grad_norm, self.layers, self.histograms)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StepEvent):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"StepEvent(step={self.step}, loss={self.loss!r}, accuracy={self.accuracy!r}, lr={self.lr!r}, "
            f"grad_norm={self.grad_norm!r}, layers=<{len(self.layers)} layers>)"
        )

    @classmethod
    def from_pb(cls, s: pb.StepEvent) -> StepEvent:
        return cls(
            s.step,
            s.loss,
            s.accuracy,
            s.lr,
            s.grad_norm,
            tuple([LayerStats.from_pb(x) for x in s.layers]),
            tuple([Histogram.from_pb(h) for h in s.histograms]),
        )


@dataclass(frozen=True, slots=True)
class EvalEvent:
    """An evaluation on the held-out split after ``step`` updates."""

    step: int
    test_loss: float
    test_accuracy: float

    @classmethod
    def from_pb(cls, e: pb.EvalEvent) -> EvalEvent:
        return cls(e.step, e.test_loss, e.test_accuracy)


@dataclass(frozen=True)
class JobCounts:
    """How many of a sweep's jobs are in each state."""

    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    total: int = 0

    @property
    def done(self) -> int:
        """Jobs that ended, however."""
        return self.succeeded + self.failed + self.cancelled

    @classmethod
    def from_pb(cls, c: pb.JobCounts) -> JobCounts:
        return cls(c.queued, c.running, c.succeeded, c.failed, c.cancelled, c.total)


@dataclass(frozen=True)
class Axis:
    """A spec field a sweep varies and its values, as text."""

    field: str
    values: tuple[str, ...] = ()
