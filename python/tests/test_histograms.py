"""Gradient histograms over time (``Job.histograms``), checked against the dashboard's JSON answer
(``GET /api/jobs/<id>/histograms``) of the same server."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import numpy as np
import pytest
from helpers import SMALL

import gradlab
from gradlab._proto import gradlab_pb2 as pb
from gradlab.testing import LocalServer

COLUMNS = ["step", "layer", "bin", "log10_lo", "log10_hi", "count", "kind"]
#: SMALL's network on digits (64 inputs, 10 classes): 3 hidden layers of 8, then the output layer.
FANS = [(64, 8), (8, 8), (8, 8), (8, 10)]
DTYPES = ["int64", "int64", "int64", "float64", "float64", "int64", "category"]
OUTSIDE = ["zeros", "underflow", "overflow", "nonfinite"]


@pytest.fixture(scope="module")
def hist_job(client: gradlab.Client) -> gradlab.Job:
    """SMALL (200 steps) with histograms every 10 steps: at steps 0, 10, ..., 190."""
    return client.submit(name="histograms", histogram_every=10, **SMALL).wait(timeout=120)


def http_histograms(server: LocalServer, job_id: int, **params: Any) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    with urllib.request.urlopen(f"{server.url}/api/jobs/{job_id}/histograms?{query}", timeout=30) as r:
        body: dict[str, Any] = json.load(r)
    return body


def test_the_frame_has_every_bin_of_every_recorded_step_and_layer(hist_job: gradlab.Job) -> None:
    assert hist_job.state == "succeeded"
    df = hist_job.histograms()
    assert list(df.columns) == COLUMNS
    assert [str(t) for t in df.dtypes] == DTYPES
    assert list(df["kind"].cat.categories) == ["bin", *OUTSIDE]
    assert sorted(df["step"].unique()) == list(range(0, 200, 10))
    assert sorted(df["layer"].unique()) == [0, 1, 2, 3]
    # 64 bins and the 4 counts outside them per (step, layer), sorted by step, layer, bin.
    assert len(df) == 20 * 4 * (64 + 4)
    one = df[(df.step == 10) & (df.layer == 2)]
    assert one["bin"].tolist() == [*range(64), -1, -1, -1, -1]
    assert one["kind"].astype(str).tolist() == ["bin"] * 64 + OUTSIDE
    keys = df[["step", "layer"]].to_numpy()
    assert np.array_equal(keys, df.sort_values(["step", "layer"], kind="stable")[["step", "layer"]].to_numpy())
    bins = df[df.kind == "bin"]
    np.testing.assert_allclose(bins["log10_lo"], -12 + bins["bin"] / 4)
    np.testing.assert_allclose(bins["log10_hi"] - bins["log10_lo"], 0.25)
    assert bins["log10_hi"].max() == 4.0
    edges = one[one.bin == -1][["log10_lo", "log10_hi"]].to_numpy()
    np.testing.assert_array_equal(edges[:3], [[-np.inf, -np.inf], [-np.inf, -12.0], [4.0, np.inf]])
    assert np.isnan(edges[3]).all()


def test_counts_add_up_to_each_layers_weight_count(hist_job: gradlab.Job) -> None:
    df = hist_job.histograms()
    totals = df.groupby(["step", "layer"])["count"].sum().unstack("layer")
    assert totals.shape == (20, 4)
    for layer, (fan_in, fan_out) in enumerate(FANS):
        assert (totals[layer] == fan_in * fan_out).all(), f"layer {layer}: {totals[layer].unique()}"
    # Digits has pixels that are 0 in every image (standardized to 0): their weights' gradients
    # are exact zeros, reported in the first layer's "zeros" rows.
    zeros = df[(df.kind == "zeros") & (df.layer == 0)]["count"]
    assert (zeros > 0).all() and (zeros % 8 == 0).all()
    assert (df[df.kind == "nonfinite"]["count"] == 0).all()


@pytest.mark.parametrize("max_steps", [None, 7, 2, 1, 500])
def test_steps_and_counts_equal_the_http_answer(
    server: LocalServer, hist_job: gradlab.Job, max_steps: int | None
) -> None:
    params = {} if max_steps is None else {"max_steps": max_steps}
    want = http_histograms(server, hist_job.id, **params)
    df = hist_job.histograms(max_steps=max_steps)
    steps = sorted(df["step"].unique().tolist())
    assert steps == want["steps"]
    assert len(steps) == (20 if max_steps is None else min(20, max_steps))
    assert steps[-1] == 190 and (max_steps == 1 or steps[0] == 0), "the first and last recorded steps kept"
    assert want["log10_lo"] == -12 and want["log10_hi"] == 4 and want["per_decade"] == 4
    for lh in want["layers"]:
        rows = df[df.layer == lh["layer"]]
        for step, h in zip(want["steps"], lh["histograms"], strict=True):
            at = rows[rows.step == step]
            assert at[at.kind == "bin"]["count"].tolist() == h["counts"]
            assert at[at.bin == -1]["count"].tolist() == [h[k] for k in OUTSIDE]


def test_layers_and_a_step_range(server: LocalServer, hist_job: gradlab.Job) -> None:
    df = hist_job.histograms(layers=[3, 0], from_step=45, to_step=120)
    assert sorted(df["step"].unique()) == [50, 60, 70, 80, 90, 100, 110, 120]
    assert df["layer"].unique().tolist() == [3, 0], "the layers in the order asked"
    want = http_histograms(server, hist_job.id, layers="3,0", **{"from": 45, "to": 120})
    assert want["steps"] == [50, 60, 70, 80, 90, 100, 110, 120]
    single = hist_job.histograms(layers=1, max_steps=3)
    assert single["layer"].unique().tolist() == [1]
    assert sorted(single["step"].unique()) == [0, 90, 190]
    # One layer's bins as a (bin x step) matrix: the heat map the dashboard draws.
    grid = single[single.kind == "bin"].pivot(index="bin", columns="step", values="count")
    assert grid.shape == (64, 3) and (grid.sum() == 64).all()
    assert hist_job.histograms(from_step=191).empty


def test_a_job_without_histograms_gives_an_empty_frame(finished_job: gradlab.Job, server: LocalServer) -> None:
    assert finished_job.spec.histogram_every == 0
    df = finished_job.histograms()
    assert df.empty and list(df.columns) == COLUMNS
    assert [str(t) for t in df.dtypes] == DTYPES
    assert list(df["kind"].cat.categories) == ["bin", *OUTSIDE]
    assert http_histograms(server, finished_job.id)["steps"] == []


def test_bad_arguments_raise_invalid_argument(hist_job: gradlab.Job, client: gradlab.Client) -> None:
    with pytest.raises(gradlab.InvalidArgument, match="layer 4 out of range"):
        hist_job.histograms(layers=4)
    with pytest.raises(gradlab.InvalidArgument, match="layer 9"):
        hist_job.histograms(layers=[0, 9])
    with pytest.raises(gradlab.InvalidArgument) as e:
        hist_job.histograms(layers=-1)
    assert e.value.field == "layers"
    with pytest.raises(gradlab.InvalidArgument) as e:
        hist_job.histograms(from_step=50, to_step=10)
    assert e.value.field == "from_step"
    with pytest.raises(gradlab.InvalidArgument) as e:
        hist_job.histograms(max_steps=-3)
    assert e.value.field == "max_steps"
    with pytest.raises(TypeError):
        hist_job.histograms(layers="0")  # type: ignore[arg-type]
    with pytest.raises(gradlab.NotFound):
        gradlab.Job(client._conn, pb.Job(id=987654)).histograms()
