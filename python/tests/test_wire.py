"""The wire readers against protobuf itself: history chunks and progress events, decoded from bytes."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from google.protobuf.message import DecodeError

from gradlab._proto import gradlab_pb2 as pb
from gradlab._wire import packed_varints, parse_chunk, parse_progress
from gradlab.models import EvalEvent, StepEvent


def varint_bytes(values: list[int]) -> bytes:
    out = bytearray()
    for v in values:
        while True:
            b = v & 0x7F
            v >>= 7
            if v:
                out.append(b | 0x80)
            else:
                out.append(b)
                break
    return bytes(out)


def key(num: int, wt: int) -> bytes:
    return varint_bytes([(num << 3) | wt])


@pytest.mark.parametrize(
    "values",
    [
        [],
        [0, 1, 127],
        list(range(70_000)),
        list(range(65_536, 131_072)),
        [5, 300, 2, 2**63 - 1, 128, 0, 2**64 - 1, 16_384],
        [random.Random(s).randrange(2**64) for s in range(100)],
        # more runs of one length than the run-wise path takes: the byte-position path
        [1, 300] * 20,
    ],
)
def test_packed_varints_decode_every_length(values: list[int]) -> None:
    got = packed_varints(varint_bytes(values))
    assert got.dtype == np.uint64
    assert got.tolist() == values


def test_packed_varints_refuse_truncated_input() -> None:
    with pytest.raises(ValueError):
        packed_varints(b"\x80\x80")


def chunk(layer: int | None, steps: list[int], metrics: list[str], downsampled: bool) -> pb.HistoryChunk:
    rng = np.random.default_rng(len(steps))
    cols = []
    for m in metrics:
        vals = rng.standard_normal(len(steps)).tolist()
        if vals:
            vals[0] = math.nan
        if len(vals) > 2:
            vals[1], vals[2] = math.inf, -0.0
        col = pb.Column(metric=m, values=vals)
        if downsampled:
            col.min.extend([v - 1 for v in vals])
            col.max.extend([v + 1 for v in vals])
        cols.append(col)
    msg = pb.HistoryChunk(job_id=7, steps=steps, columns=cols, downsampled=downsampled)
    if layer is not None:
        msg.layer = layer
    return msg


@pytest.mark.parametrize("layer", [None, 0, 3])
@pytest.mark.parametrize("downsampled", [False, True])
@pytest.mark.parametrize("n", [0, 1, 5000])
def test_history_chunks_decode_as_protobuf_reads_them(layer: int | None, downsampled: bool, n: int) -> None:
    msg = chunk(layer, list(range(10, 10 + 3 * n, 3)), ["grad_norm", "act_std"], downsampled)
    got = parse_chunk(msg.SerializeToString())
    assert got.layer == layer
    assert got.downsampled == downsampled
    assert got.steps.tolist() == list(msg.steps)
    assert [c.metric for c in got.columns] == ["grad_norm", "act_std"]
    for mine, theirs in zip(got.columns, msg.columns):
        np.testing.assert_array_equal(mine.values, np.array(theirs.values))
        np.testing.assert_array_equal(mine.min, np.array(theirs.min))
        np.testing.assert_array_equal(mine.max, np.array(theirs.max))
    if n > 2:
        assert np.signbit(got.columns[0].values[2]), "-0.0 keeps its sign"


def test_history_chunk_evals_and_empty_series() -> None:
    msg = pb.HistoryChunk(job_id=1, evals=[pb.EvalEvent(step=0, test_loss=2.5, test_accuracy=0.1)])
    got = parse_chunk(msg.SerializeToString())
    assert got.steps.size == 0 and got.columns == [] and got.layer is None
    assert [(e.step, e.test_loss, e.test_accuracy) for e in got.evals] == [(0, 2.5, 0.1)]


def test_unpacked_doubles_and_steps_are_read_too() -> None:
    # The wire format allows a repeated field as one record per value; prost packs, but a reader
    # must take both.
    col = (
        key(1, 2)
        + varint_bytes([4])
        + b"loss"
        + key(2, 1)
        + np.float64(1.5).tobytes()
        + key(2, 1)
        + np.float64(-2.0).tobytes()
    )
    data = key(3, 0) + varint_bytes([4]) + key(3, 0) + varint_bytes([9]) + key(4, 2) + varint_bytes([len(col)]) + col
    got = parse_chunk(data)
    assert got.steps.tolist() == [4, 9]
    assert got.columns[0].metric == "loss"
    assert got.columns[0].values.tolist() == [1.5, -2.0]


def layer_stats(rng: random.Random) -> pb.LayerStats:
    fields = [f.name for f in pb.LayerStats.DESCRIPTOR.fields if f.name != "nonfinite"]
    choices = [0.0, 0.0, 1.0, -3.25, math.inf, math.nan, 1e-300, 5e-324]
    values = {f: rng.choice(choices + [rng.random()]) for f in fields}
    return pb.LayerStats(nonfinite=rng.choice([0, 0, 0, 1, 300, 2**40]), **values)


def same(a: object, b: object) -> bool:
    """Equal, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def step_event(rng: random.Random, hist: bool, step: int | None = None) -> pb.StepEvent:
    ev = pb.StepEvent(
        step=rng.choice([0, 1, 200, 2**40]) if step is None else step,
        loss=rng.choice([0.0, 2.5, math.nan]),
        accuracy=rng.random(),
        lr=rng.choice([0.0, 0.05]),
        grad_norm=rng.random(),
        layers=[layer_stats(rng) for _ in range(rng.choice([0, 1, 17, 200]))],
    )
    if hist:
        ev.histograms.add(log10_lo=-12, per_decade=4, counts=[0, 3, 5], zeros=1, overflow=2, nonfinite=1)
    return ev


def assert_same_step(got: object, step: pb.StepEvent) -> None:
    want = StepEvent.from_pb(step)
    assert isinstance(got, StepEvent)
    assert (got.step, got.accuracy, got.lr, got.grad_norm) == (want.step, want.accuracy, want.lr, want.grad_norm)
    assert same(got.loss, want.loss)
    assert same(tuple(map(tuple, got.layers)), tuple(map(tuple, want.layers)))
    assert got.histograms == want.histograms


@pytest.mark.parametrize("seed", range(40))
def test_step_events_decode_as_protobuf_reads_them(seed: int) -> None:
    step = step_event(random.Random(seed), hist=seed % 5 == 0)
    assert_same_step(parse_progress(pb.Progress(step=step).SerializeToString()), step)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("n", [0, 1, 2, 37])
def test_step_batches_decode_as_protobuf_reads_them(seed: int, n: int) -> None:
    rng = random.Random(seed)
    first = rng.choice([0, 127, 16_383, 2**40])
    steps = [step_event(rng, hist=(seed + k) % 5 == 0, step=first + k) for k in range(n)]
    data = pb.Progress(steps=pb.StepBatch(steps=steps)).SerializeToString()
    got = parse_progress(data)
    theirs = pb.Progress.FromString(data)
    assert theirs.WhichOneof("event") == "steps"
    assert isinstance(got, list) and len(got) == len(theirs.steps.steps) == n
    assert [e.step for e in got] == [s.step for s in theirs.steps.steps] == list(range(first, first + n))
    # Layers are read lazily, from the batch's bytes: read them in another order than the steps'.
    for ev, step in reversed(list(zip(got, theirs.steps.steps))):
        assert_same_step(ev, step)


def test_a_step_batch_with_a_field_the_reader_does_not_know_goes_to_protobuf() -> None:
    rng = random.Random(3)
    steps = [step_event(rng, hist=False, step=k) for k in range(3)]
    # An unknown field (a newer server's) in the second step: that step through protobuf, the
    # others by the reader; all in order.
    odd = steps[1].SerializeToString() + key(99, 0) + varint_bytes([5])
    body = b"".join(
        key(1, 2) + varint_bytes([len(b)]) + b
        for b in (steps[0].SerializeToString(), odd, steps[2].SerializeToString())
    )
    got = parse_progress(key(4, 2) + varint_bytes([len(body)]) + body)
    assert isinstance(got, list) and [e.step for e in got] == [0, 1, 2]
    for ev, step in zip(got, steps):
        assert_same_step(ev, step)
    # An unknown field in the batch itself: the whole message through protobuf.
    body2 = body + key(7, 0) + varint_bytes([1])
    got = parse_progress(key(4, 2) + varint_bytes([len(body2)]) + body2)
    assert isinstance(got, list) and [e.step for e in got] == [0, 1, 2]
    for ev, step in zip(got, steps):
        assert_same_step(ev, step)


def test_a_truncated_step_batch_is_an_error_as_in_protobuf() -> None:
    rng = random.Random(4)
    data = pb.Progress(
        steps=pb.StepBatch(steps=[step_event(rng, hist=False, step=k) for k in range(3)])
    ).SerializeToString()
    with pytest.raises(DecodeError):
        pb.Progress.FromString(data[:-10])
    with pytest.raises(DecodeError):
        parse_progress(data[:-10])
    # The batch whole, but its last step cut short inside it.
    last = pb.StepEvent(step=9, loss=1.0).SerializeToString()
    body = key(1, 2) + varint_bytes([len(last) + 4]) + last
    with pytest.raises(DecodeError):
        parse_progress(key(4, 2) + varint_bytes([len(body)]) + body)


def test_other_progress_events() -> None:
    ev = parse_progress(pb.Progress(eval=pb.EvalEvent(step=100, test_loss=0.5, test_accuracy=0.9)).SerializeToString())
    assert ev == EvalEvent(100, 0.5, 0.9)
    job = parse_progress(pb.Progress(job=pb.Job(id=4, state=pb.JOB_STATE_RUNNING)).SerializeToString())
    assert isinstance(job, pb.Job) and job.id == 4
    assert parse_progress(b"") is None
