"""The entry point: :class:`Client`, a connection to one gradlab server."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import _spec
from ._connection import Connection
from ._proto import gradlab_pb2 as pb
from .errors import InvalidArgument
from .jobs import Job
from .models import enum_value
from .presets import Preset, preset_from_pb
from .sweeps import Sweep

#: The most jobs the server sends in one page.
PAGE_SIZE = 1000


def _states(state: str | Iterable[str] | None) -> list[int]:
    if state is None:
        return []
    names = [state] if isinstance(state, str) else list(state)
    out = []
    for s in names:
        for part in s.split(","):
            try:
                out.append(enum_value(pb.JobState, part, "JOB_STATE_"))
            except ValueError:
                raise InvalidArgument(
                    f"state: unknown state {part!r} (queued, running, succeeded, failed, cancelled)", field="state"
                ) from None
    return out


def _verdict(verdict: str | None) -> int:
    if verdict is None:
        return 0
    try:
        return enum_value(pb.Verdict, verdict, "VERDICT_")
    except ValueError:
        raise InvalidArgument(
            f"verdict: unknown verdict {verdict!r} (healthy, vanishing, exploding, dead, not_learning, collapsing)",
            field="verdict",
        ) from None


def list_jobs(
    conn: Connection,
    state: str | Iterable[str] | None = None,
    activation: str | None = None,
    min_depth: int | None = None,
    max_depth: int | None = None,
    label: str | None = None,
    verdict: str | None = None,
    name: str | None = None,
    sweep: int | Sweep | None = None,
    oldest_first: bool = False,
    limit: int | None = None,
    page_size: int = PAGE_SIZE,
    filter: str | None = None,
    sort: str | None = None,
    descending: bool = False,
) -> list[Job]:
    """ListJobs, following page tokens until ``limit`` jobs (None: all)."""
    req = pb.ListJobsRequest(
        states=_states(state),  # type: ignore[arg-type]
        activation=activation or "",
        label=label or "",
        verdict=_verdict(verdict),  # type: ignore[arg-type]
        name_contains=name or "",
        oldest_first=oldest_first,
        # The server parses both (one grammar for the CLI, the dashboard and this client) and
        # answers INVALID_ARGUMENT naming `filter` or `sort_by`.
        filter=filter or "",
        sort_by=sort or "",
        descending=descending,
        page_size=page_size if limit is None else max(1, min(page_size, limit)),
    )
    if min_depth is not None:
        req.min_depth = min_depth
    if max_depth is not None:
        req.max_depth = max_depth
    if sweep is not None:
        req.sweep_id = sweep.id if isinstance(sweep, Sweep) else sweep
    jobs: list[Job] = []
    while True:
        page = conn.unary("ListJobs", req)
        jobs.extend(Job(conn, j) for j in page.jobs)
        if not page.next_page_token or (limit is not None and len(jobs) >= limit):
            break
        req.page_token = page.next_page_token
    return jobs if limit is None else jobs[:limit]


#: The columns of :meth:`Client.jobs_frame`.
JOB_COLUMNS = (
    "id", "name", "activation", "depth", "width", "init", "optimizer", "lr", "batch", "seed", "state",
    "steps_done", "total_steps", "verdict", "test_accuracy", "test_loss", "ratio_at_init", "ratio_at_end",
    "sweep_id", "created", "finished", "error",
)  # fmt: skip


def _nan(x: float | None) -> float:
    return np.nan if x is None else x


def jobs_frame(jobs: Sequence[Job]) -> pd.DataFrame:
    """One row per job: what ``gradlab ls`` shows and more (:data:`JOB_COLUMNS`)."""
    rows = []
    for j in jobs:
        s, m = j.spec, j.summary
        rows.append(
            (
                j.id,
                s.name,
                s.activation,
                s.depth,
                s.width if s.width is not None else ",".join(map(str, s.hidden)),
                s.init,
                s.optimizer,
                s.lr,
                s.batch,
                s.seed,
                j.state,
                j.steps_done,
                j.total_steps,
                m.verdict if m else None,
                m.test_accuracy if m else np.nan,
                m.test_loss if m else np.nan,
                _nan(m.ratio_at_init if m else None),
                _nan(m.ratio_at_end if m else None),
                j.sweep_id,
                j.created,
                j.finished,
                j.error,
            )
        )
    df = pd.DataFrame(rows, columns=list(JOB_COLUMNS))
    df["sweep_id"] = df["sweep_id"].astype("Int64")
    return df


class Client:
    """A connection to a gradlab server.

    Args:
        server: ``http://HOST:PORT``, or ``https://HOST:PORT`` for TLS. Default: GRADLAB_SERVER,
            else ``http://127.0.0.1:50051`` (as the CLI).
        token: sent as ``authorization: Bearer <token>`` with every call. Default: GRADLAB_TOKEN.
        ca_cert: PEM file of the certificate(s) to trust for an ``https://`` server (e.g. the
            ``ca.pem`` of ``gradlab cert``); default GRADLAB_CA_CERT, else the system's roots.
        timeout: a deadline in seconds for each unary call (default: none). Streams
            (watch, history) have none; ``wait`` takes its own.

    The connection is made on the first call; a server that cannot be reached raises
    :class:`gradlab.Unavailable` naming its address. Usable as a context manager (closes the channel).
    """

    def __init__(
        self,
        server: str | None = None,
        token: str | None = None,
        ca_cert: str | os.PathLike[str] | None = None,
        timeout: float | None = None,
    ) -> None:
        self._conn = Connection(server, token, ca_cert, timeout)
        self._presets: dict[str, Preset] | None = None

    @property
    def server(self) -> str:
        """The server's URL."""
        return self._conn.server

    def __repr__(self) -> str:
        return f"<gradlab.Client {self.server}>"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the channel (open streams end)."""
        self._conn.close()

    # Jobs

    def submit(self, **spec: Any) -> Job:
        """Submits a training job; returns it (queued) at once.

        Keyword arguments are the JobSpec fields (proto/gradlab/v1/gradlab.proto): ``name``,
        ``labels`` (dict), ``activation`` (``"tanh"``, ``"relu"``, ``"leaky_relu:0.1"``...),
        ``output_activation``, ``depth`` and ``width`` (or ``hidden=[512, 256]``), ``init``
        (``"lecun_normal"``, ``"he"``, ``"orthogonal:1.5"``; ``sigma_w``/``sigma_b`` make it
        custom), ``loss``, ``optimizer`` (``"adam"``, ``"momentum:0.9"``), ``lr``, ``schedule``,
        ``weight_decay``, ``clip_norm``, ``batch``, ``steps``, ``eval_every``, ``dataset``,
        ``test_fraction``, ``standardize``, ``seed``, ``record_every``, ``histogram_every``,
        ``stop_on_nonfinite``, ``thresholds`` (dict), ``checkpoint_every_steps``,
        ``checkpoint_every_seconds``, ``checkpoint_keep``, ``keep_checkpoints`` (checkpoints let
        a job claimed again go on where it stopped). What is left out takes the server's default;
        text goes as the CLI's flags take it. A field the server refuses raises
        :class:`gradlab.InvalidArgument` whose ``field`` names it.
        """
        return Job(self._conn, self._conn.unary("SubmitJob", _spec.job_spec("submit", **spec)))

    def job(self, id: int) -> Job:
        """The job with that id (:class:`gradlab.NotFound` if none)."""
        return Job(self._conn, self._conn.unary("GetJob", pb.JobId(id=id)))

    def jobs(
        self,
        state: str | Iterable[str] | None = None,
        activation: str | None = None,
        min_depth: int | None = None,
        max_depth: int | None = None,
        label: str | None = None,
        verdict: str | None = None,
        name: str | None = None,
        sweep: int | Sweep | None = None,
        oldest_first: bool = False,
        limit: int | None = None,
        page_size: int = PAGE_SIZE,
        filter: str | None = None,
        sort: str | None = None,
        descending: bool = False,
    ) -> list[Job]:
        """Jobs, newest first (or ``oldest_first``, or by ``sort``), every page of them unless ``limit``.

        Args:
            state: a state or several (``"succeeded"``, ``["queued", "running"]``).
            activation: e.g. ``"tanh"`` (``"relu"`` finds ramp jobs).
            min_depth, max_depth: bounds on the number of hidden layers.
            label: ``"key"`` (has the label) or ``"key=value"``.
            verdict: healthy, vanishing, exploding, dead, not_learning or collapsing.
            name: jobs whose name contains this.
            sweep: a sweep (or its id): its jobs only.
            oldest_first: creation order, oldest first (when there is no ``sort``).
            limit: at most this many jobs.
            page_size: jobs per call (at most 1000).
            filter: conditions the server checks, all of which must hold, e.g.
                ``"test_accuracy >= 0.9 and depth <= 8 and label.team != vision and finished > now-7d"``
                (fields: id, sweep, depth, width, steps, test_accuracy, test_loss, created,
                started, finished, state, activation, verdict, name, ``label.KEY``). A condition on
                a result or a time matches only jobs that have one. A filter the server cannot
                parse raises :class:`gradlab.InvalidArgument` with ``field == "filter"`` and a
                message naming the column it stopped at.
            sort: order by created, test_accuracy, test_loss, depth, width, steps, started or
                finished, smallest first; jobs without a value come last, ties go by creation.
                An unknown key raises :class:`gradlab.InvalidArgument` (``field == "sort_by"``).
            descending: with ``sort``, largest first.
        """
        return list_jobs(
            self._conn,
            state,
            activation,
            min_depth,
            max_depth,
            label,
            verdict,
            name,
            sweep,
            oldest_first,
            limit,
            page_size,
            filter,
            sort,
            descending,
        )

    def jobs_frame(self, **filters: Any) -> pd.DataFrame:
        """:meth:`jobs` (the same filters, ``sort`` and ``limit``) as a DataFrame in that order, a
        row per job: id, name, activation, depth, width, init, optimizer, lr, batch, seed, state,
        steps_done, total_steps, verdict, test_accuracy, test_loss, ratio_at_init, ratio_at_end,
        sweep_id, created, finished, error."""
        return jobs_frame(self.jobs(**filters))

    # Sweeps

    def sweep(
        self,
        preset: str | None = None,
        axes: Mapping[str, Iterable[Any]] | None = None,
        name: str | None = None,
        **base: Any,
    ) -> Sweep:
        """Submits a sweep: a base job crossed with axes; returns it with its jobs queued.

        Args:
            preset: start from one of the server's presets (:meth:`presets`), such as
                ``seed-claims``, ``seed-claims-mini`` or ``edge-of-chaos``.
            axes: field -> values, e.g. ``{"activation": ["tanh", "relu"], "depth": [2, 8, 32]}``;
                each replaces the preset's axis of that field or is added after them. Fields:
                activation, output_activation, depth, width, init, sigma_w, sigma_b, optimizer,
                lr, loss, batch, steps, seed.
            name: the sweep's name (default: the preset's).
            **base: JobSpec fields of the base job (as :meth:`submit` takes them), over the
                preset's base: ``depth`` alone keeps its width, ``sigma_w`` makes the init custom.

        The server expands and checks the sweep (at most its --max-sweep-jobs) and stores it whole
        or not at all; a bad axis raises :class:`gradlab.InvalidArgument` with ``field`` such as
        ``axes.lr`` or ``base.batch``.
        """
        merged: dict[str, Any] = {}
        sweep_axes: dict[str, list[str]] = {}
        sweep_name = ""
        if preset is not None:
            p = self._preset(preset)
            merged = {**p.base, "labels": dict(p.base.get("labels", {}))}
            sweep_axes = {k: list(v) for k, v in p.axes.items()}
            sweep_name = p.name
        merged = _spec.merge_base(merged, base)
        for field, values in (axes or {}).items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
                raise TypeError(f"axes[{field!r}]: expected a list of values, got {values!r}")
            sweep_axes[field] = [_axis_text(v) for v in values]
        msg = pb.SweepSpec(
            name=name if name is not None else sweep_name,
            base=_spec.job_spec("sweep", **merged),
            axes=[pb.Axis(field=f, values=v) for f, v in sweep_axes.items()],
        )
        return Sweep(self._conn, self._conn.unary("SubmitSweep", msg))

    def presets(self) -> dict[str, Preset]:
        """The server's sweep presets by name (what ``gradlab sweep --list-presets`` prints), each
        with its base job as keyword arguments and its axes. Read once per client."""
        if self._presets is None:
            answer = self._conn.unary("ListPresets", pb.ListPresetsRequest())
            self._presets = {p.name: preset_from_pb(p) for p in answer.presets}
        return dict(self._presets)

    def _preset(self, name: str) -> Preset:
        known = self.presets()
        try:
            return known[name.strip()]
        except KeyError:
            raise InvalidArgument(
                f"preset: unknown preset {name!r}; known: {', '.join(known)}", field="preset"
            ) from None

    def get_sweep(self, id: int) -> Sweep:
        """The sweep with that id (:class:`gradlab.NotFound` if none)."""
        return Sweep(self._conn, self._conn.unary("GetSweep", pb.SweepId(id=id)))

    def sweeps(self, limit: int | None = None) -> list[Sweep]:
        """Sweeps, newest first (every page unless ``limit``)."""
        req = pb.ListSweepsRequest(page_size=200 if limit is None else max(1, min(200, limit)))
        out: list[Sweep] = []
        while True:
            page = self._conn.unary("ListSweeps", req)
            out.extend(Sweep(self._conn, s) for s in page.sweeps)
            if not page.next_page_token or (limit is not None and len(out) >= limit):
                break
            req.page_token = page.next_page_token
        return out if limit is None else out[:limit]


def _axis_text(v: Any) -> str:
    if isinstance(v, bool):
        raise TypeError(f"axis values are numbers or text, got {v!r}")
    return repr(v) if isinstance(v, float) else str(v)
