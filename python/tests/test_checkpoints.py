"""Checkpoints through the client: the settings in the spec, the stored ones on the job, and the
trained network as a file (safetensors, .npz) and as predictions."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import safetensors
import safetensors.numpy
from helpers import SMALL

import gradlab


def test_a_job_that_keeps_its_checkpoints_lists_them(client: gradlab.Client) -> None:
    job = client.submit(
        **{**SMALL, "steps": 450},
        checkpoint_every_steps=100,
        checkpoint_every_seconds=0,
        checkpoint_keep=2,
        keep_checkpoints=True,
    ).wait(timeout=120)
    assert job.state == "succeeded"
    s = job.spec
    assert (s.checkpoint_every_steps, s.checkpoint_every_seconds, s.checkpoint_keep, s.keep_checkpoints) == (
        100,
        0.0,
        2,
        True,
    )
    job.refresh()
    # Every 100 steps, and the trained state at the end; the newest two kept.
    assert [c.step for c in job.checkpoints] == [400, 450]
    assert all(c.bytes > 1000 and c.created is not None for c in job.checkpoints)
    assert job.resumed_from is None and job.attempt == 1


def test_checkpoints_go_when_a_job_ends_by_default(client: gradlab.Client) -> None:
    job = client.submit(**{**SMALL, "steps": 300}, checkpoint_every_steps=100, checkpoint_every_seconds=0).wait(timeout=120)
    assert job.spec.keep_checkpoints is False and job.spec.checkpoint_every_steps == 100
    assert job.refresh().checkpoints == []


def test_bad_checkpoint_settings_name_their_field(client: gradlab.Client) -> None:
    with pytest.raises(gradlab.InvalidArgument) as e:
        client.submit(**SMALL, checkpoint_keep=0)
    assert e.value.field == "checkpoint_keep"
    with pytest.raises(gradlab.InvalidArgument) as e:
        client.submit(**SMALL, checkpoint_every_seconds=-1.0)
    assert e.value.field == "checkpoint_every_seconds"


def _forward(tensors: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The exported network by hand: tanh hidden layers, identity output (the test job's)."""
    a = x.astype(np.float32)
    if "input.mean" in tensors:
        a = ((x.astype(np.float64) - tensors["input.mean"]) * tensors["input.scale"]).astype(np.float32)
    layers = sum(1 for k in tensors if k.endswith(".weight"))
    for i in range(layers):
        w, b = tensors[f"layer{i}.weight"], tensors[f"layer{i}.bias"]
        a = a @ w.T + b
        if i + 1 < layers:
            a = np.tanh(a)
    return a


@pytest.fixture(scope="module")
def kept(client: gradlab.Client) -> gradlab.Job:
    return client.submit(
        activation="tanh",
        depth=3,
        width=16,
        batch=32,
        steps=300,
        seed=3,
        keep_checkpoints=True,
        checkpoint_every_steps=100,
        checkpoint_every_seconds=0,
    ).wait(timeout=120)


def test_exported_weights_give_the_servers_predictions(kept: gradlab.Job, tmp_path: pathlib.Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 17, size=(50, 64)).astype(np.float32)  # raw digits: 8x8 pixels, 0..16
    served = kept.predict(x)
    assert served.shape == (50, 10) and served.dtype == np.float32

    st = tmp_path / "model.safetensors"
    assert kept.export(st) == 300
    tensors = safetensors.numpy.load_file(str(st))
    assert tensors["layer0.weight"].shape == (16, 64) and tensors["layer3.weight"].shape == (10, 16)
    assert tensors["layer0.weight"].dtype == np.float32 and tensors["input.mean"].dtype == np.float64
    with safetensors.safe_open(str(st), framework="np") as f:
        meta = f.metadata()
    assert (meta["format"], meta["job"], meta["step"], meta["activation"]) == ("gradlab-mlp/1", str(kept.id), "300", "tanh")
    assert json.loads(meta["spec"])["hidden"] == [16, 16, 16]
    np.testing.assert_allclose(_forward(tensors, x), served, rtol=1e-4, atol=1e-5)

    npz = tmp_path / "model.npz"
    assert kept.export(npz, step=250) == 200, "the newest checkpoint at or before step 250"
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files if k != "__metadata__"}
        meta = json.loads(bytes(z["__metadata__"]).decode())
    assert meta["step"] == "200"
    np.testing.assert_allclose(_forward(arrays, x), kept.predict(x, step=250), rtol=1e-4, atol=1e-5)
    assert not np.allclose(_forward(arrays, x), served), "step 200's network is not step 300's"


def test_export_and_predict_refuse_what_they_cannot_do(
    client: gradlab.Client, kept: gradlab.Job, tmp_path: pathlib.Path
) -> None:
    target = tmp_path / "never.safetensors"
    with pytest.raises(gradlab.FailedPrecondition, match="step: .*no checkpoint at or before step 50"):
        kept.export(target, step=50)
    plain = client.submit(**SMALL).wait(timeout=120)
    with pytest.raises(gradlab.FailedPrecondition, match="keep_checkpoints"):
        plain.export(target)
    with pytest.raises(gradlab.FailedPrecondition, match="keep_checkpoints"):
        plain.predict(np.zeros((1, 64)))
    assert not target.exists() and list(tmp_path.iterdir()) == [], "nothing half-written"
    with pytest.raises(ValueError, match="safetensors or .npz"):
        kept.export(tmp_path / "model.onnx")
    with pytest.raises(gradlab.InvalidArgument) as e:
        kept.predict(np.zeros((2, 63)))
    assert e.value.field == "inputs" and "64" in e.value.message
    with pytest.raises(gradlab.NotFound):
        client.job(kept.id + 10_000)


def test_a_fork_starts_at_a_checkpoint_with_another_lr_and_reads_from_step_0(kept: gradlab.Job) -> None:
    fork = kept.fork(250, lr=0.2, name="hotter", labels={"try": "lr"}).wait(timeout=120)
    assert fork.state == "succeeded"
    assert (fork.parent_id, fork.fork_step, fork.spec.lr, fork.name) == (kept.id, 200, 0.2, "hotter")
    assert fork.labels == {"try": "lr"} and fork.spec.hidden == kept.spec.hidden
    mine = fork.history(layers=[0], metrics="grad_norm").set_index("step")["value"]
    theirs = kept.history(layers=[0], metrics="grad_norm").set_index("step")["value"]
    assert list(mine.index) == list(range(300)), "one series from step 0"
    assert mine.loc[:199].equals(theirs.loc[:199]), "the parent's steps before the fork"
    assert not np.allclose(mine.loc[201:].to_numpy(), theirs.loc[201:].to_numpy()), "its own after"
    assert kept.parent_id is None and kept.fork_step is None


def test_a_fork_refuses_what_it_cannot_change_and_keeps_its_parent(kept: gradlab.Job) -> None:
    with pytest.raises(gradlab.InvalidArgument) as e:
        kept.fork(200, depth=5)
    assert e.value.field == "hidden"
    with pytest.raises(gradlab.InvalidArgument) as e:
        kept.fork(200, steps=150)
    assert e.value.field == "steps"
    with pytest.raises(gradlab.FailedPrecondition, match="at_step: .*no checkpoint at or before step 50"):
        kept.fork(50)
    with pytest.raises(TypeError, match="did you mean 'lr'"):
        kept.fork(200, lrr=0.1)
    child = kept.fork(300, steps=320).wait(timeout=120)
    with pytest.raises(gradlab.FailedPrecondition, match=f"has forks .*job {child.id}"):
        kept.delete()
    assert kept.refresh().state == "succeeded"
