"""Histories as DataFrames, value for value what `gradlab history --format csv` writes."""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from helpers import run_cli

import gradlab
from gradlab.testing import LocalServer


def read_cli_csv(text: str) -> dict[str, np.ndarray]:
    """The CLI's CSV, parsed exactly: Rust writes each f64 in its shortest round-trip form (NaN,
    inf), which Python's float() reads back to the same bits."""
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    cols = {name: [r[i] for r in body] for i, name in enumerate(header)}
    out: dict[str, np.ndarray] = {
        "step": np.array([int(s) for s in cols["step"]], dtype=np.int64),
        "layer": np.array([int(s) if s else -1 for s in cols["layer"]], dtype=np.int64),
        "metric": np.array(cols["metric"], dtype=object),
    }
    for name in ("value", "min", "max"):
        if name in cols:
            out[name] = np.array([float(s) for s in cols[name]], dtype=np.float64)
    return out


def assert_same_as_cli(df: pd.DataFrame, cli_csv: str) -> None:
    want = read_cli_csv(cli_csv)
    assert list(df.columns) == list(want), "the same columns, in the same order"
    assert len(df) == len(want["step"]) > 0
    np.testing.assert_array_equal(df["step"].to_numpy(), want["step"])
    np.testing.assert_array_equal(df["layer"].fillna(-1).to_numpy(dtype=np.int64), want["layer"])
    np.testing.assert_array_equal(df["metric"].astype(str).to_numpy(dtype=object), want["metric"])
    for name in ("value", "min", "max"):
        if name in want:
            got = df[name].to_numpy()
            # Equal bit for bit (-0.0 too), NaN where the CLI writes NaN (whose sign it does not write).
            assert np.array_equal(got, want[name], equal_nan=True)
            numbers = ~np.isnan(got)
            np.testing.assert_array_equal(np.signbit(got[numbers]), np.signbit(want[name][numbers]))


@pytest.mark.parametrize(
    "kwargs, flags",
    [
        ({}, []),
        (
            {"layers": [0, 3], "metrics": ["grad_norm", "loss", "dead"]},
            ["--layers", "0,3", "--metrics", "grad_norm,loss,dead"],
        ),
        ({"layers": 2}, ["--layers", "2"]),
        ({"metrics": "act_std", "steps": (10, 60)}, ["--metrics", "act_std", "--steps", "10..60"]),
        ({"metrics": "lr", "steps": (190, None)}, ["--metrics", "lr", "--steps", "190.."]),
        ({"metrics": "err_norm", "steps": range(5)}, ["--metrics", "err_norm", "--steps", "0..4"]),
        ({"max_points": 7}, ["--max-points", "7"]),
        (
            {"layers": [1], "metrics": ["grad_norm", "accuracy"], "max_points": 1},
            ["--layers", "1", "--metrics", "grad_norm,accuracy", "--max-points", "1"],
        ),
    ],
)
def test_history_equals_the_cli_csv(finished_job: gradlab.Job, cli, kwargs: dict, flags: list[str]) -> None:
    df = finished_job.history(**kwargs)
    assert_same_as_cli(df, cli("history", str(finished_job.id), "--format", "csv", *flags))


@pytest.fixture(scope="module")
def exploded(gradlab_bin: str) -> Iterator[tuple[LocalServer, gradlab.Job]]:
    """A job whose loss and gradients overflow, on a server of its own."""
    with LocalServer(gradlab_bin, workers=1) as server:
        c = server.client()
        job = c.submit(
            name="explodes", activation="identity", depth=6, width=16, sigma_w=4.0, lr=2.0, steps=60,
            stop_on_nonfinite=False, seed=3,
        )  # fmt: skip
        # Waits on the history rather than the job: reading the job itself fails (see below).
        deadline = time.monotonic() + 120
        while len(job.history(metrics="loss")) < 60:
            assert time.monotonic() < deadline, "the job did not finish"
            time.sleep(0.2)
        yield server, job


def test_history_of_an_exploding_job_keeps_non_finite_values(exploded, gradlab_bin: str) -> None:
    server, job = exploded
    df = job.history()
    values = df["value"].to_numpy()
    assert np.isnan(values).any() and np.isinf(values).any(), "the job was meant to blow up"
    assert_same_as_cli(df, run_cli(gradlab_bin, server, "history", str(job.id), "--format", "csv"))
    down = job.history(max_points=5)
    assert_same_as_cli(
        down, run_cli(gradlab_bin, server, "history", str(job.id), "--format", "csv", "--max-points", "5")
    )


def test_an_exploding_job_can_be_read(exploded) -> None:
    server, job = exploded
    assert job.wait(timeout=30).verdict == "exploding"
    assert [j.id for j in server.client().jobs()] == [job.id]


def test_long_frame_types_and_pivots(finished_job: gradlab.Job) -> None:
    df = finished_job.history()
    assert str(df["step"].dtype) == "int64" and str(df["layer"].dtype) == "Int64"
    assert isinstance(df["metric"].dtype, pd.CategoricalDtype) and str(df["value"].dtype) == "float64"
    assert df["layer"].isna().sum() == 4 * 200, "the per-step metrics (loss, accuracy, lr, global_grad_norm)"
    assert set(df["layer"].dropna()) == {0, 1, 2, 3}, "three hidden layers and the output layer"
    heat = df[df["metric"] == "grad_norm"].pivot(index="layer", columns="step", values="value")
    assert heat.shape == (4, 200)
    per_step = df[df["layer"].isna()].pivot(index="step", columns="metric", values="value")
    assert set(per_step.columns) >= {"loss", "accuracy", "lr", "global_grad_norm"}
    assert (per_step["lr"] == finished_job.spec.lr).all()


def test_wide_equals_the_pivot_of_the_long_frame(finished_job: gradlab.Job) -> None:
    wide = finished_job.history(wide=True)
    long = finished_job.history()
    assert wide.index.name == "step" and list(wide.columns.names) == ["layer", "metric"]
    assert wide.shape == (200, 4 + 4 * 12)
    pivot = long.assign(metric=long["metric"].astype(str)).pivot(
        index="step", columns=["layer", "metric"], values="value"
    )
    for layer, metric in [(pd.NA, "loss"), (0, "grad_norm"), (3, "act_mean"), (2, "nonfinite")]:
        np.testing.assert_array_equal(wide[(layer, metric)].to_numpy(), pivot[(layer, metric)].to_numpy())
    grad = finished_job.history(metrics="grad_norm", wide=True)
    assert list(grad.columns) == [(i, "grad_norm") for i in range(4)]
    assert list(grad.xs("grad_norm", axis=1, level="metric").columns) == [0, 1, 2, 3]


def test_downsampled_history_has_min_and_max(finished_job: gradlab.Job) -> None:
    df = finished_job.history(layers=[0], metrics="grad_norm", max_points=10)
    assert list(df.columns) == ["step", "layer", "metric", "value", "min", "max"]
    assert len(df) == 10
    assert (df["min"] <= df["value"]).all() and (df["value"] <= df["max"]).all()
    full = finished_job.history(layers=[0], metrics="grad_norm")["value"].to_numpy()
    assert df["max"].max() == full.max() and df["min"].min() == full.min()


def test_evals(finished_job: gradlab.Job) -> None:
    ev = finished_job.evals()
    assert list(ev.columns) == ["step", "test_loss", "test_accuracy"]
    assert ev["step"].tolist() == [0, 50, 100, 150, 200]
    assert ev["test_accuracy"].iloc[-1] == pytest.approx(finished_job.summary.test_accuracy)


def test_an_empty_selection_is_an_empty_frame(finished_job: gradlab.Job) -> None:
    df = finished_job.history(metrics="grad_norm", steps=(500, 600))
    assert len(df) == 0 and list(df.columns) == ["step", "layer", "metric", "value"]
    assert list(df["metric"].cat.categories) == ["grad_norm"]
    assert finished_job.history(metrics="grad_norm", steps=(500, 600), wide=True).shape == (0, 4)


def test_bad_selections_are_invalid_arguments(finished_job: gradlab.Job) -> None:
    with pytest.raises(gradlab.InvalidArgument, match="unknown metric"):
        finished_job.history(metrics="grad_nrom")
    with pytest.raises(gradlab.InvalidArgument, match="layer 9 out of range"):
        finished_job.history(layers=[9])
    with pytest.raises(gradlab.InvalidArgument) as e:
        finished_job.history(steps=(10, 5))
    assert e.value.field == "from_step"
    with pytest.raises(ValueError, match="step 1"):
        finished_job.history(steps=range(0, 10, 2))


def test_history_of_a_long_job_spans_many_chunks(client: gradlab.Client, cli) -> None:
    # 70,000 steps x 2 metrics is more than one 65,536-value chunk per layer.
    job = client.submit(
        name="long-history", activation="tanh", depth=2, width=4, batch=1, steps=70_000, eval_every=0,
        dataset="gaussian:dim=4,classes=2,n=64", seed=2,
    ).wait(timeout=300)  # fmt: skip
    df = job.history(metrics=["grad_norm", "loss"])
    assert len(df) == 70_000 * (1 + 3 * 1)
    assert_same_as_cli(df, cli("history", str(job.id), "--format", "csv", "--metrics", "grad_norm,loss"))
    assert not math.isnan(df["value"].iloc[-1])
