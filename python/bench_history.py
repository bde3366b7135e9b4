#!/usr/bin/env python3
"""How fast the Python client reads histories and follows live jobs (issue 17's speed targets).

1. ``job.history()`` of 17 layers (16 hidden and the output) x 100,000 steps x one metric into a
   DataFrame (1.7 M rows): target under 1 s. Also the wide form and a downsampled read.
2. ``job.watch()`` on a job training as fast as the server can (100,000 steps of a 16x4 net,
   or ``--depth`` x4, every step recorded): does the watcher keep up? Printed: the job's own rate, the events the
   watcher took per second, how far behind the job the watcher was at each tenth of the run
   (steps), and how long after the job's end the watcher saw it. Then the same job watched again
   once finished (all replay): the most events per second this client takes from this server,
   with and without reading every step's layers. The watch asks for steps in batches
   (WatchRequest.max_batch, as ``job.watch()`` does); ``--unbatched`` asks for one step a
   message, as clients before batching did, for comparison.

Starts its own server (GRADLAB_BIN, or --bin) unless --server is given:

    GRADLAB_BIN=target/release/gradlab python python/bench_history.py [--steps 100000] [--repeat 5]
        [--only history|watch] [--depth 16] [--unbatched]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import gradlab
import gradlab.jobs
from gradlab.testing import LocalServer

SPEC = dict(
    activation="tanh",
    depth=16,
    width=4,
    batch=1,
    eval_every=0,
    dataset="gaussian:dim=4,classes=2,n=64",
    seed=1,
)


def bench_history(client: gradlab.Client, steps: int, repeat: int) -> None:
    job = client.submit(name="bench-history", steps=steps, **SPEC)
    t = time.perf_counter()
    job.wait()
    print(f"trained {job.spec.depth + 1} layers x {steps:,} steps in {time.perf_counter() - t:.1f} s")
    for label, kwargs in [
        ("long (step, layer, metric, value)", dict(metrics="grad_norm")),
        ("wide (a column per layer)", dict(metrics="grad_norm", wide=True)),
        ("downsampled, max_points=1000", dict(metrics="grad_norm", max_points=1000)),
    ]:
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            df = job.history(**kwargs)
            times.append(time.perf_counter() - t)
        print(
            f"history {label}: {df.shape[0]:,} x {df.shape[1]} in median {statistics.median(times):.3f} s "
            f"(min {min(times):.3f}, max {max(times):.3f}, {repeat} runs)"
        )


def bench_watch(client: gradlab.Client, steps: int, depth: int) -> None:
    job = client.submit(name="bench-watch", steps=steps, **{**SPEC, "depth": depth})
    seen = {"step": -1, "events": 0}
    lags: list[tuple[int, int]] = []
    probe = client.job(job.id)

    def sample() -> None:
        # The job's progress as the server reports it, against what the watcher has taken.
        while not probe.done:
            time.sleep(0.25)
            probe.refresh()
            lags.append((probe.steps_done, probe.steps_done - 1 - seen["step"]))

    sampler = threading.Thread(target=sample, daemon=True)
    started, cpu = time.perf_counter(), time.process_time()
    sampler.start()
    end_seen = None
    for ev in job.watch():
        seen["events"] += 1
        if isinstance(ev, gradlab.StepEvent):
            seen["step"] = ev.step
        elif isinstance(ev, gradlab.StateEvent) and ev.job.done:
            end_seen = time.time()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    sampler.join()
    job.refresh()
    assert job.started is not None and job.finished is not None and end_seen is not None
    run = (job.finished - job.started).total_seconds()
    print(
        f"watch: the job trained {steps:,} steps in {run:.2f} s ({steps / run:,.0f} steps/s); the watcher took "
        f"{seen['events']:,} events in {elapsed:.2f} s ({seen['events'] / elapsed:,.0f}/s), "
        f"saw the end {1000 * (end_seen - job.finished.timestamp()):.0f} ms after it was stored; "
        f"client CPU {1e6 * cpu / seen['events']:.0f} us/event"
    )
    tenth = max(1, len(lags) // 10)
    print("  watcher behind the job (steps) at job progress:", ", ".join(f"{s:,}: {lag:,}" for s, lag in lags[::tenth]))
    running = [lag for s, lag in lags if s < steps]
    if running:
        print(f"  behind while the job ran: max {max(running):,} steps, median {statistics.median(running):,.0f}")
    for read_layers in (False, True):
        t, cpu, n = time.perf_counter(), time.process_time(), 0
        for ev in job.watch():
            n += 1
            if read_layers and isinstance(ev, gradlab.StepEvent):
                ev.layers
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        what = "reading every step's layers" if read_layers else "steps' scalars only"
        print(
            f"  replay of the finished job, {what}: {n / wall:,.0f} events/s, client CPU {1e6 * cpu / n:.0f} us/event"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", help="an existing server (default: start one)")
    ap.add_argument("--bin", help="the gradlab binary (default: GRADLAB_BIN)")
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", choices=["history", "watch"], help="run one of the two (default both)")
    ap.add_argument("--depth", type=int, default=SPEC["depth"], help="hidden layers of the watched job")
    ap.add_argument("--unbatched", action="store_true", help="watch one step a message (max_batch 1)")
    a = ap.parse_args()
    if a.unbatched:
        gradlab.jobs._MAX_BATCH = 1
    print(f"watch batches: up to {gradlab.jobs._MAX_BATCH} steps a message")

    def run(client: gradlab.Client) -> None:
        if a.only != "watch":
            bench_history(client, a.steps, a.repeat)
        if a.only != "history":
            bench_watch(client, a.steps, a.depth)

    if a.server:
        run(gradlab.Client(a.server))
        return
    with LocalServer(a.bin, workers=2) as server:
        run(server.client())


if __name__ == "__main__":
    main()
