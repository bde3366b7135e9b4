"""Jobs through the client: submit, watch, wait, cancel, list."""

from __future__ import annotations

import dataclasses
import time
import uuid

import pandas as pd
import pytest
from helpers import SMALL

import gradlab
import gradlab.jobs
from gradlab._connection import MAX_RECEIVE_BYTES
from gradlab._proto import gradlab_pb2 as pb
from gradlab.models import JobSpec
from gradlab.testing import LocalServer


def test_submit_returns_the_queued_job_with_every_default_filled(client: gradlab.Client) -> None:
    job = client.submit(activation="relu", depth=2, width=8, steps=30, name="defaults", labels={"who": "test"})
    assert job.id > 0 and job.state in ("queued", "running")
    s = job.spec
    assert s.activation == "ramp", "the server's canonical name for relu"
    assert s.hidden == (8, 8) and s.depth == 2 and s.width == 8
    assert s.init == "lecun_normal" and s.optimizer == "sgd" and s.dataset == "digits"
    assert s.labels == {"who": "test"} and s.name == "defaults"
    assert s.thresholds is not None and s.stop_on_nonfinite
    assert job.total_steps == 30 and job.summary is None and job.verdict is None
    assert repr(job).startswith(f"<Job {job.id} 'defaults' ramp 2x8")
    job.wait(timeout=120)


def test_spec_fields_as_keywords(client: gradlab.Client) -> None:
    job = client.submit(
        hidden=[12, 6],
        activation="leaky_relu:0.1",
        sigma_w=1.5,
        sigma_b=0.1,
        optimizer="momentum:0.8",
        lr=0.02,
        schedule="cosine",
        clip_norm=5.0,
        batch=8,
        steps=20,
        eval_every=10,
        dataset="gaussian:dim=6,classes=3,n=64",
        test_fraction=0.5,
        standardize=False,
        seed=9,
        record_every=2,
        histogram_every=10,
        stop_on_nonfinite=False,
        thresholds={"vanish_ratio": 1e-3},
    )
    s = job.wait(timeout=120).spec
    assert s.hidden == (12, 6) and s.width is None
    assert s.init == "custom" and (s.sigma_w, s.sigma_b) == (1.5, 0.1)
    assert s.optimizer.startswith("momentum") and s.lr == 0.02 and s.schedule.startswith("cosine")
    assert (s.clip_norm, s.batch, s.seed, s.record_every, s.histogram_every) == (5.0, 8, 9, 2, 10)
    assert s.standardize is False and s.stop_on_nonfinite is False and s.test_fraction == 0.5
    assert s.thresholds is not None and s.thresholds.vanish_ratio == 1e-3
    assert job.state == "succeeded"
    # Steps 0, 2, ..., 18 and the last are recorded.
    steps = job.history(layers=[0], metrics="grad_norm")["step"].tolist()
    assert steps == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 19]


def test_unknown_keyword_is_a_type_error_with_a_suggestion(client: gradlab.Client) -> None:
    with pytest.raises(TypeError, match="'dept'.*did you mean 'depth'"):
        client.submit(dept=3)
    with pytest.raises(TypeError, match="depth: expected a whole number"):
        client.submit(depth=2.5)
    with pytest.raises(TypeError, match="activation: expected a string"):
        client.submit(activation=3)


def test_wait_and_summary(finished_job: gradlab.Job) -> None:
    job = finished_job
    assert job.done and job.state == "succeeded"
    assert job.steps_done == job.total_steps == 200
    s = job.summary
    assert s is not None and s.steps_done == 200 and 0 <= s.test_accuracy <= 1
    assert job.verdict in ("healthy", "vanishing", "exploding", "dead", "not_learning", "collapsing")
    assert s.mean_field is not None and s.mean_field.chi1 > 0
    assert job.worker and job.attempt == 1
    assert job.created and job.started and job.finished and job.created <= job.started <= job.finished


def test_watch_replays_then_follows_live_without_gaps(client: gradlab.Client) -> None:
    job = client.submit(name="watched", **{**SMALL, "steps": 3000, "eval_every": 1000})
    events = list(job.watch())
    assert isinstance(events[0], gradlab.StateEvent) and events[0].job.state in ("queued", "running")
    assert isinstance(events[-1], gradlab.StateEvent) and events[-1].job.state == "succeeded"
    steps = [e.step for e in events if isinstance(e, gradlab.StepEvent)]
    assert steps == list(range(3000)), "every step once, in order"
    evals = [e for e in events if isinstance(e, gradlab.EvalEvent)]
    assert [e.step for e in evals] == [0, 1000, 2000, 3000]
    states = [e.job.state for e in events if isinstance(e, gradlab.StateEvent)]
    assert "running" in states and states[-1] == "succeeded"
    assert job.state == "succeeded" and job.summary is not None, "watching updates the job"
    step = next(e for e in events if isinstance(e, gradlab.StepEvent) and e.step == 1234)
    assert len(step.layers) == 4 and step.layers[0].grad_norm > 0 and step.loss > 0


def test_watched_steps_equal_the_stored_history(client: gradlab.Client, finished_job: gradlab.Job) -> None:
    steps = [e for e in finished_job.watch() if isinstance(e, gradlab.StepEvent)]
    wide = finished_job.history(metrics=["grad_norm", "act_std", "loss"], wide=True)
    for e in steps[::37]:
        row = wide.loc[e.step]
        assert row[(pd.NA, "loss")] == e.loss
        for layer, stats in enumerate(e.layers):
            assert row[(layer, "grad_norm")] == stats.grad_norm
            assert row[(layer, "act_std")] == stats.act_std


def test_watch_from_a_step(finished_job: gradlab.Job) -> None:
    events = list(finished_job.watch(from_step=150))
    steps = [e.step for e in events if isinstance(e, gradlab.StepEvent)]
    assert steps == list(range(150, 200))
    assert [e.step for e in events if isinstance(e, gradlab.EvalEvent)] == [150, 200]
    # Replayed, an evaluation at step k comes after step k-1 and before step k.
    order = [(type(e).__name__, getattr(e, "step", None)) for e in events]
    assert order[:3] == [("StateEvent", None), ("EvalEvent", 150), ("StepEvent", 150)]
    assert order[-2:] == [("EvalEvent", 200), ("StateEvent", None)]


class RecordedBatches:
    """The messages a watch took: for each, how many steps it carried (0: not a StepBatch)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sizes: list[int] = []
        parse = gradlab.jobs.parse_progress

        def recording(data: bytes) -> object:
            ev = parse(data)
            self.sizes.append(len(ev) if isinstance(ev, list) else 0)
            return ev

        monkeypatch.setattr(gradlab.jobs, "parse_progress", recording)

    @property
    def batches(self) -> list[int]:
        return [n for n in self.sizes if n]


def test_a_fast_job_is_watched_in_batches_every_step_once_in_order(
    client: gradlab.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = RecordedBatches(monkeypatch)
    job = client.submit(name="fast-watch", **{**SMALL, "batch": 1, "steps": 20_000, "eval_every": 5000})
    events = []
    for ev in job.watch():
        events.append(ev)
        if isinstance(ev, gradlab.StepEvent) and ev.step == 100:
            time.sleep(0.3)  # steps wait meanwhile: they come batched
    steps = [e.step for e in events if isinstance(e, gradlab.StepEvent)]
    assert steps == list(range(20_000)), "every step once, in order"
    assert [e.step for e in events if isinstance(e, gradlab.EvalEvent)] == [0, 5000, 10_000, 15_000, 20_000]
    assert isinstance(events[0], gradlab.StateEvent) and isinstance(events[-1], gradlab.StateEvent)
    assert events[-1].job.state == "succeeded" and job.state == "succeeded"
    assert max(rec.batches) > 1, "the steps waiting came in one message"
    assert max(rec.batches) <= gradlab.jobs._MAX_BATCH
    assert len(rec.sizes) < 20_000 // 2, f"{len(rec.sizes)} messages for 20,000 steps"
    mid = next(e for e in events if isinstance(e, gradlab.StepEvent) and e.step == 12_345)
    assert len(mid.layers) == 4 and mid.layers[0].grad_norm > 0 and mid.loss > 0


def test_watch_batches_hold_at_most_max_batch_steps(finished_job: gradlab.Job, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gradlab.jobs, "_MAX_BATCH", 16)
    rec = RecordedBatches(monkeypatch)
    events = []
    for ev in finished_job.watch():
        events.append(ev)
        if len(events) == 3:
            time.sleep(0.2)
    assert [e.step for e in events if isinstance(e, gradlab.StepEvent)] == list(range(200))
    assert sum(rec.batches) == 200 and max(rec.batches) == 16
    assert [type(e).__name__ for e in events].count("EvalEvent") == 5


def test_deep_nets_are_watched_in_smaller_batches() -> None:
    from gradlab.jobs import _MAX_BATCH, _max_batch

    def spec(depth: int) -> JobSpec:
        return dataclasses.replace(JobSpec.from_pb(pb.JobSpec()), hidden=(4,) * depth)

    assert _max_batch(spec(16)) == _MAX_BATCH
    deep = _max_batch(spec(1024))  # the server's deepest net
    assert 2 <= deep < _MAX_BATCH
    # A batch of its steps, each with every layer's statistics and histogram at their largest
    # (counts up to 2^32: a layer of 65,536 x 65,536 weights), stays well under the receive limit.
    big = 2**32
    layer = pb.LayerStats(nonfinite=2**64 - 1, **{f.name: 1.5 for f in pb.LayerStats.DESCRIPTOR.fields[:11]})
    hist = pb.Histogram(
        log10_lo=-12, per_decade=4, counts=[big] * 64, zeros=big, underflow=big, overflow=big, nonfinite=big
    )
    step = pb.StepEvent(
        step=2**40, loss=1.0, accuracy=1.0, lr=1.0, grad_norm=1.0, layers=[layer] * 1025, histograms=[hist] * 1025
    )
    assert deep * step.ByteSize() < MAX_RECEIVE_BYTES // 2


def test_breaking_out_of_a_watch_hangs_up(client: gradlab.Client) -> None:
    job = client.submit(name="long-watch", **{**SMALL, "steps": 400_000})
    try:
        for ev in job.watch():
            if isinstance(ev, gradlab.StepEvent):
                break
        # The channel is still usable, and the server still answers.
        assert client.job(job.id).state == "running"
    finally:
        job.cancel()


def test_wait_with_a_timeout_raises_deadline_exceeded(client: gradlab.Client) -> None:
    job = client.submit(name="slow", **{**SMALL, "steps": 400_000})
    try:
        with pytest.raises(gradlab.DeadlineExceeded, match=f"job {job.id} is still") as e:
            job.wait(timeout=0.5)
        assert isinstance(e.value, TimeoutError)
    finally:
        job.cancel()


def test_cancel_a_running_job_keeps_its_history(client: gradlab.Client) -> None:
    job = client.submit(name="to-cancel", **{**SMALL, "steps": 400_000})
    for ev in job.watch():
        if isinstance(ev, gradlab.StepEvent) and ev.step >= 50:
            break
    job.cancel()
    assert job.state == "cancelled" and job.done
    assert 50 < job.steps_done < 400_000
    hist = job.history(layers=[0], metrics="grad_norm")
    assert len(hist) == job.steps_done
    assert job.refresh().state == "cancelled"
    with pytest.raises(gradlab.FailedPrecondition):
        job.cancel()


def test_cancel_a_queued_job(idle_server: LocalServer) -> None:
    with idle_server.client() as c:
        job = c.submit(name="never", **SMALL)
        assert job.state == "queued"
        job.cancel()
        assert job.state == "cancelled" and job.started is None and job.steps_done == 0
        assert job.wait(timeout=10).state == "cancelled"


def test_list_filters(client: gradlab.Client) -> None:
    tag = uuid.uuid4().hex[:8]
    a = client.submit(name=f"{tag}-a", labels={"run": tag, "kind": "x"}, activation="tanh", depth=1, width=4, steps=5)
    b = client.submit(name=f"{tag}-b", labels={"run": tag, "kind": "y"}, activation="relu", depth=3, width=4, steps=5)
    c = client.submit(name=f"{tag}-c", labels={"run": tag}, activation="relu", depth=5, width=4, steps=5)
    for j in (a, b, c):
        j.wait(timeout=60)
    ids = lambda jobs: [j.id for j in jobs]
    assert ids(client.jobs(label=f"run={tag}")) == [c.id, b.id, a.id], "newest first"
    assert ids(client.jobs(label=f"run={tag}", oldest_first=True)) == [a.id, b.id, c.id]
    assert ids(client.jobs(name=tag, activation="ramp")) == [c.id, b.id]
    assert ids(client.jobs(name=tag, activation="relu")) == [c.id, b.id], "aliases work as in the CLI"
    assert ids(client.jobs(name=tag, min_depth=2, max_depth=4)) == [b.id]
    assert ids(client.jobs(name=tag, label="kind")) == [b.id, a.id]
    assert ids(client.jobs(name=tag, label="kind=y")) == [b.id]
    assert ids(client.jobs(name=tag, state="succeeded")) == [c.id, b.id, a.id]
    assert ids(client.jobs(name=tag, state=["queued", "running"])) == []
    verdict = a.verdict
    assert verdict is not None and a.id in ids(client.jobs(name=tag, verdict=verdict))
    assert ids(client.jobs(name=tag, limit=2)) == [c.id, b.id]
    with pytest.raises(gradlab.InvalidArgument, match="unknown state") as e:
        client.jobs(state="finished")
    assert e.value.field == "state"
    with pytest.raises(gradlab.InvalidArgument) as e:
        client.jobs(min_depth=5, max_depth=2)
    assert e.value.field == "min_depth"


def test_list_follows_page_tokens(client: gradlab.Client) -> None:
    tag = uuid.uuid4().hex[:8]
    submitted = [client.submit(name=f"page-{tag}-{i}", depth=1, width=2, steps=1).id for i in range(7)]
    got = client.jobs(name=f"page-{tag}", page_size=2)
    assert [j.id for j in got] == submitted[::-1], "7 jobs over 4 pages, in order, none twice"
    assert [j.id for j in client.jobs(name=f"page-{tag}", page_size=3, limit=5)] == submitted[::-1][:5]
    frame = client.jobs_frame(name=f"page-{tag}", page_size=2)
    assert frame["id"].tolist() == submitted[::-1]
    assert {"id", "name", "activation", "depth", "width", "state", "verdict", "test_accuracy"} <= set(frame.columns)
    for j in got:
        j.wait(timeout=60)


def test_job_by_id(client: gradlab.Client, finished_job: gradlab.Job) -> None:
    again = client.job(finished_job.id)
    assert again.id == finished_job.id and again.spec == finished_job.spec and again.summary == finished_job.summary
