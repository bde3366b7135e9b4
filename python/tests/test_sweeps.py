"""Sweeps through the client: submit, watch, wait, the report, presets, cancel."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from helpers import run_cli

import gradlab
from gradlab.testing import LocalServer

AXES = {"activation": ["tanh", "relu"], "depth": [1, 2], "lr": [0.05, 0.1]}
BASE = dict(width=8, batch=16, steps=40, eval_every=20, seed=1)


@pytest.fixture(scope="module")
def small_sweep(client: gradlab.Client) -> Iterator[tuple[gradlab.Sweep, list]]:
    """A 2 x 2 x 2 sweep and the events of watching it from its submission to its end."""
    sweep = client.sweep(axes=AXES, name=f"small-{uuid.uuid4().hex[:6]}", **BASE)
    events = list(sweep.watch())
    yield sweep, events


def test_submit_and_watch_a_sweep(small_sweep) -> None:
    sweep, events = small_sweep
    assert sweep.counts.total == 8 and sweep.state == "succeeded" and sweep.done
    assert [(a.field, a.values) for a in sweep.axes] == [
        ("activation", ("tanh", "relu")),
        ("depth", ("1", "2")),
        ("lr", ("0.05", "0.1")),
    ]
    assert sweep.base.width == 8 and sweep.base.steps == 40
    first, last = events[0], events[-1]
    assert isinstance(first, gradlab.SweepEvent) and first.sweep.id == sweep.id
    assert isinstance(last, gradlab.SweepEvent) and last.sweep.state == "succeeded"
    assert last.counts.succeeded == last.counts.total == 8
    jobs = [e for e in events if isinstance(e, gradlab.SweepJobEvent)]
    ended = [e.job.id for e in jobs if e.job.done]
    assert len(ended) == len(set(ended)) == 8, "each job's end once"
    counts = [e.counts.done for e in jobs]
    assert counts == sorted(counts), "counts only grow"
    assert sweep.refresh().counts.done == 8


def test_a_sweeps_jobs(small_sweep) -> None:
    sweep, _ = small_sweep
    jobs = sweep.jobs()
    assert [(j.spec.activation, j.spec.depth, j.spec.lr) for j in jobs] == [
        (a, d, lr) for a in ("tanh", "ramp") for d in (1, 2) for lr in (0.05, 0.1)
    ], "oldest first: the axes' cross product, first axis outermost"
    assert jobs[0].name == f"{sweep.name} activation=tanh depth=1 lr=0.05"
    assert jobs[0].spec.labels == {"sweep.activation": "tanh", "sweep.depth": "1", "sweep.lr": "0.05"}
    assert all(j.sweep_id == sweep.id and j.state == "succeeded" for j in jobs)
    assert [j.id for j in sweep.jobs(activation="relu", min_depth=2)] == [jobs[6].id, jobs[7].id]


def test_the_report_is_the_servers(small_sweep, cli) -> None:
    sweep, _ = small_sweep
    report = sweep.report()
    assert report.sweep_id == sweep.id and report.sweep == sweep.name and report.state == "succeeded"
    assert report.cell_axes == ("activation", "depth") and report.lr_is_axis
    assert report.jobs_total == report.jobs_finished == 8 and report.margin == 0.05 and report.steps == 40
    assert report.rules and all(isinstance(r, str) for r in report.rules)
    cells = report.cells
    assert cells[["activation", "depth"]].values.tolist() == [["tanh", 1], ["tanh", 2], ["ramp", 1], ["ramp", 2]]
    assert {"best_lr", "test_accuracy", "test_accuracy_std", "n", "ratio_at_init", "predicted_ratio",
            "accuracy_lr=0.05", "accuracy_lr=0.1"} <= set(cells.columns)  # fmt: skip
    assert cells["best_lr"].isin([0.05, 0.1]).all() and (cells["n"] == 1).all()
    best = np.where(cells["best_lr"] == 0.05, cells["accuracy_lr=0.05"], cells["accuracy_lr=0.1"])
    np.testing.assert_array_equal(cells["test_accuracy"].to_numpy(), best)
    assert report.trainable["activation"].tolist() == ["tanh", "ramp"]
    assert str(report.trainable["trainable_depth"].dtype) == "Int64"
    assert len(report.depth_points) == 4
    claims = report.claims
    assert claims["activation"].tolist() == ["tanh", "ramp"]
    assert claims["claim"].tolist() == ["<= 2", "unbounded"]
    assert claims["supported"].dtype == bool and claims["measured"].str.endswith("of 2").all()

    # The CLI prints the same report from the same RPC: every figure equal.
    want = json.loads(cli("report", str(sweep.id), "--format", "json"))
    assert len(want["cells"]) == len(cells)
    for w, (_, got) in zip(want["cells"], cells.iterrows()):
        assert {v["field"]: str(got[v["field"]]) for v in w["values"]} == {v["field"]: v["value"] for v in w["values"]}
        assert float(w["best_lr"]) == got["best_lr"]
        assert (w["test_accuracy"]["mean"], w["test_accuracy"]["std"], w["test_accuracy"]["n"]) == (
            got["test_accuracy"], got["test_accuracy_std"], got["n"])  # fmt: skip
        assert (w["test_loss"]["mean"], w["test_loss"]["std"]) == (got["test_loss"], got["test_loss_std"])
        assert w["ratio_at_init_geomean"] == got["ratio_at_init"] and w["chi1_mean"] == got["chi1_mean"]
        assert w["predicted_ratio_geomean"] == got["predicted_ratio"]
        assert w["verdicts"] == {
            k.removeprefix("verdict_"): v for k, v in got.items() if k.startswith("verdict_") and v
        }
        assert {lr["lr"]: lr["mean_test_accuracy"] for lr in w["by_lr"]} == {
            lr: got[f"accuracy_lr={lr}"] for lr in ("0.05", "0.1")}  # fmt: skip
    for w, (_, got) in zip(want["trainable"], report.trainable.iterrows()):
        assert w["activation"] == got["activation"] and w["reference_accuracy"] == got["reference_accuracy"]
        assert w["trainable_depth"] == (None if pd.isna(got["trainable_depth"]) else got["trainable_depth"])
        assert (w["deepest_swept"], w["recovered_at"]) == (got["deepest_swept"], got["recovered_at"])
    points = report.depth_points
    assert [(p["depth"], p["mean_test_accuracy"], p["within_margin"]) for t in want["trainable"] for p in t["points"]] == list(
        zip(points["depth"], points["mean_test_accuracy"], points["within_margin"]))  # fmt: skip
    for w, (_, got) in zip(want["claims"], claims.iterrows()):
        assert (w["activation"], w["supported"], w["note"]) == (got["activation"], got["supported"], got["note"])
        assert (w["claimed"]["kind"], w["claimed"].get("depth", 0)) == (got["claimed_kind"], got["claimed_depth"])
    assert list(report.rules) == want["rules"]


def test_report_margin(small_sweep) -> None:
    sweep, _ = small_sweep
    assert sweep.report(margin=0.5).margin == 0.5
    with pytest.raises(gradlab.InvalidArgument):
        sweep.report(margin=2.0)


def test_sweeps_list_and_get(client: gradlab.Client, small_sweep) -> None:
    sweep, _ = small_sweep
    assert client.get_sweep(sweep.id).name == sweep.name
    assert sweep.id in [s.id for s in client.sweeps()]
    with pytest.raises(gradlab.NotFound, match="sweep 99999 not found"):
        client.get_sweep(99999)


def same_sweeps(server: LocalServer, a: int, b: int) -> None:
    """The two sweeps hold the same spec and the same jobs."""
    with server.client() as c:
        sa, sb = c.get_sweep(a), c.get_sweep(b)
        assert sa.proto.spec == sb.proto.spec
        ja, jb = c.jobs(sweep=a, oldest_first=True), c.jobs(sweep=b, oldest_first=True)
        assert len(ja) == len(jb) == sa.counts.total > 0
        for x, y in zip(ja, jb):
            assert x.proto.spec == y.proto.spec


@pytest.mark.parametrize(
    "flags, kwargs",
    [
        (["--preset", "seed-claims"], dict(preset="seed-claims")),
        (["--preset", "seed-claims-mini"], dict(preset="seed-claims-mini")),
        (["--preset", "edge-of-chaos"], dict(preset="edge-of-chaos")),
        (
            ["--preset", "seed-claims-mini", "--width", "16", "--steps", "100", "--axis", "seed=1,2", "--name", "mine",
             "--label", "k=v"],
            dict(preset="seed-claims-mini", width=16, steps=100, axes={"seed": [1, 2]}, name="mine", labels={"k": "v"}),
        ),
        (["--preset", "edge-of-chaos", "--sigma-w", "2.0", "--axis", "depth=3"],
         dict(preset="edge-of-chaos", sigma_w=2.0, axes={"depth": [3]})),
        (["--preset", "edge-of-chaos", "--init", "he_normal", "--axis", "sigma_w=1.5"],
         dict(preset="edge-of-chaos", init="he_normal", axes={"sigma_w": [1.5]})),
        (["--axis", "activation=tanh,relu", "--axis", "lr=0.1,0.01", "--depth", "3", "--steps", "10"],
         dict(axes={"activation": ["tanh", "relu"], "lr": [0.1, 1e-2]}, depth=3, steps=10)),
    ],
)  # fmt: skip
def test_presets_and_overrides_submit_what_the_cli_submits(
    idle_server: LocalServer, gradlab_bin: str, flags: list[str], kwargs: dict
) -> None:
    try:
        by_cli = int(run_cli(gradlab_bin, idle_server, "sweep", *flags).split()[0])
    except AssertionError as e:  # the CLI refuses it: so must the client, the same way
        with pytest.raises(gradlab.InvalidArgument), idle_server.client() as c:
            c.sweep(**kwargs)
        assert "InvalidArgument" in str(e)
        return
    with idle_server.client() as c:
        by_client = c.sweep(**kwargs).id
    same_sweeps(idle_server, by_cli, by_client)
    with idle_server.client() as c:
        for s in (by_cli, by_client):
            c.get_sweep(s).cancel()


def test_presets_come_from_the_server(idle_server: LocalServer, gradlab_bin: str) -> None:
    with idle_server.client() as c:
        presets = c.presets()
    assert {n: p.jobs for n, p in presets.items()} == {"seed-claims": 1296, "seed-claims-mini": 288, "edge-of-chaos": 80}
    listed = run_cli(gradlab_bin, idle_server, "sweep", "--list-presets")
    for name, p in presets.items():
        assert any(line.split(None, 1) == [name, p.about] for line in listed.splitlines()), (name, listed)
    mini = presets["seed-claims-mini"]
    assert (mini.base["depth"], mini.base["width"], mini.base["steps"]) == (1, 32, 1500)
    assert presets["edge-of-chaos"].base["init"].startswith("custom")


def test_sweep_errors_name_the_field(idle_server: LocalServer) -> None:
    with idle_server.client() as c:
        with pytest.raises(gradlab.InvalidArgument, match="unknown preset 'seed-claim'") as e:
            c.sweep(preset="seed-claim")
        assert e.value.field == "preset"
        with pytest.raises(gradlab.InvalidArgument) as e:
            c.sweep(axes={"lr": [0.1, -1]})
        assert e.value.field == "axes.lr" and "-1" in e.value.message
        with pytest.raises(gradlab.InvalidArgument) as e:
            c.sweep(axes={"depht": [1, 2]})
        assert e.value.field.startswith("axes")
        with pytest.raises(gradlab.InvalidArgument) as e:
            c.sweep(steps=10)
        assert e.value.field == "axes", e.value
        with pytest.raises(gradlab.InvalidArgument) as e:
            c.sweep(axes={"seed": range(20_000)})
        assert e.value.field == "axes" and "10000" in e.value.message.replace(",", "")
        with pytest.raises(gradlab.InvalidArgument) as e:
            c.sweep(axes={"depth": [1]}, batch=0)
        assert e.value.field == "base.batch"
        with pytest.raises(TypeError, match="list of values"):
            c.sweep(axes={"depth": "1,2"})


def test_cancel_a_sweep(idle_server: LocalServer) -> None:
    with idle_server.client() as c:
        sweep = c.sweep(axes={"depth": [1, 2, 3]}, steps=10)
        assert sweep.state == "queued" and sweep.counts.queued == 3
        sweep.cancel()
        assert sweep.state == "cancelled" and sweep.cancelled is not None
        assert sweep.wait(timeout=30).counts.cancelled == 3
        with pytest.raises(gradlab.FailedPrecondition, match="already"):
            sweep.cancel()


def test_sweep_wait_timeout(idle_server: LocalServer) -> None:
    with idle_server.client() as c:
        sweep = c.sweep(axes={"depth": [1]}, steps=10)
        try:
            with pytest.raises(gradlab.DeadlineExceeded, match=f"sweep {sweep.id} has 0/1 jobs done"):
                sweep.wait(timeout=0.3)
        finally:
            sweep.cancel()
