"""Run management through the client: deleting jobs and sweeps, renaming and relabelling jobs."""

from __future__ import annotations

import uuid

import pytest
from helpers import SMALL, run_cli

import gradlab
from gradlab.testing import LocalServer

#: A job that runs until cancelled (for the tests' purposes).
LONG = {**SMALL, "steps": 400_000}


def _tag() -> str:
    return uuid.uuid4().hex[:8]


def _started(job: gradlab.Job) -> gradlab.Job:
    """Waits until the job has stored a few steps (it is running)."""
    for ev in job.watch():
        if isinstance(ev, gradlab.StepEvent) and ev.step >= 5:
            break
    return job.refresh()


def test_delete_a_finished_job(client: gradlab.Client) -> None:
    tag = _tag()
    job = client.submit(name=f"{tag}-doomed", labels={"run": tag}, **SMALL).wait(timeout=120)
    keep = client.submit(name=f"{tag}-kept", labels={"run": tag}, **SMALL).wait(timeout=120)
    assert job.state == "succeeded" and len(job.history(layers=[0], metrics="grad_norm")) == 200
    assert job.delete() is None
    with pytest.raises(gradlab.NotFound, match=f"job {job.id}"):
        client.job(job.id)
    with pytest.raises(gradlab.NotFound):
        job.history()
    with pytest.raises(gradlab.NotFound):
        job.refresh()
    with pytest.raises(gradlab.NotFound):
        job.delete()
    assert job.state == "succeeded", "the object keeps its last state"
    assert [j.id for j in client.jobs(label=f"run={tag}")] == [keep.id]
    # Ids are not reused: the next job gets a new one even though the deleted job may have been the newest.
    keep.delete()
    after = client.submit(name=f"{tag}-after", **{**SMALL, "steps": 5})
    assert after.id > keep.id > job.id
    after.wait(timeout=60).delete()


def test_an_active_job_is_refused_unless_cancel(client: gradlab.Client) -> None:
    job = _started(client.submit(name=f"{_tag()}-running", **LONG))
    assert job.state == "running"
    with pytest.raises(gradlab.FailedPrecondition, match="cancel") as e:
        job.delete()
    assert f"job {job.id}" in e.value.message and "running" in e.value.message
    assert client.job(job.id).state == "running", "a refused delete changes nothing"
    job.delete(cancel=True)
    with pytest.raises(gradlab.NotFound):
        client.job(job.id)


def test_a_queued_job_is_refused_unless_cancel(idle_server: LocalServer) -> None:
    with idle_server.client() as c:
        job = c.submit(name="queued", **SMALL)
        with pytest.raises(gradlab.FailedPrecondition, match="queued: cancel it first"):
            job.delete()
        job.delete(cancel=True)
        with pytest.raises(gradlab.NotFound):
            c.job(job.id)


def test_delete_a_sweep_with_its_jobs(client: gradlab.Client) -> None:
    sweep = client.sweep(axes={"depth": [1, 2], "seed": [1, 2, 3]}, name=f"{_tag()}-gone", width=4, steps=10)
    sweep.wait(timeout=120)
    ids = [j.id for j in sweep.jobs()]
    assert len(ids) == 6
    assert sweep.delete() == 6
    with pytest.raises(gradlab.NotFound):
        client.get_sweep(sweep.id)
    for id in ids:
        with pytest.raises(gradlab.NotFound):
            client.job(id)
    assert sweep.id not in [s.id for s in client.sweeps()]
    with pytest.raises(gradlab.NotFound):
        sweep.delete()


def test_an_active_sweep_is_refused_unless_cancel(idle_server: LocalServer) -> None:
    with idle_server.client() as c:
        sweep = c.sweep(axes={"seed": [1, 2, 3]}, name="queued-sweep", **SMALL)
        ids = [j.id for j in sweep.jobs()]
        with pytest.raises(gradlab.FailedPrecondition, match="cancel"):
            sweep.delete()
        assert [j.id for j in sweep.jobs()] == ids, "all or none: nothing was deleted"
        assert sweep.delete(cancel=True) == 3
        with pytest.raises(gradlab.NotFound):
            c.get_sweep(sweep.id)
        with pytest.raises(gradlab.NotFound):
            c.job(ids[0])


def test_rename_and_labels_round_trip(client: gradlab.Client, gradlab_bin: str, server: LocalServer) -> None:
    tag = _tag()
    job = client.submit(name=f"{tag}-before", labels={"keep": "1", "drop": "x"}, **SMALL).wait(timeout=120)
    assert job.update(name=f"{tag}-after") is job
    assert job.name == f"{tag}-after" and job.labels == {"keep": "1", "drop": "x"}
    job.update(labels={"run": tag, "keep": 2}, remove_labels=["drop", "never-there"])
    assert job.labels == {"keep": "2", "run": tag} and job.name == f"{tag}-after"
    assert job.state == "succeeded" and job.summary is not None, "nothing else changes"
    # The server has it: a new read, the list and its label filter.
    again = client.job(job.id)
    assert again.name == f"{tag}-after" and again.labels == {"keep": "2", "run": tag}
    assert [j.id for j in client.jobs(label=f"run={tag}")] == [job.id]
    assert [j.id for j in client.jobs(label="drop=x", name=tag)] == []
    assert [j.id for j in client.jobs(name=f"{tag}-after")] == [job.id]
    assert [j.id for j in client.jobs(name=f"{tag}-before")] == []
    assert client.jobs_frame(label=f"run={tag}")["name"].tolist() == [f"{tag}-after"]
    assert f"{tag}-after" in run_cli(gradlab_bin, server, "ls", "--label", f"run={tag}")
    # An update with nothing in it is refused, and changes nothing.
    with pytest.raises(gradlab.InvalidArgument, match="nothing to change"):
        job.update()
    assert job.refresh().labels == {"keep": "2", "run": tag}


def test_rename_a_running_job_lasts(client: gradlab.Client) -> None:
    tag = _tag()
    job = _started(client.submit(name=f"{tag}-old", **{**SMALL, "steps": 3000}))
    job.update(name=f"{tag}-new", labels={"run": tag})
    job.wait(timeout=120)
    assert job.state == "succeeded"
    assert job.name == f"{tag}-new" and job.labels == {"run": tag}, "the finishing worker keeps the update"
    assert [j.id for j in client.jobs(label=f"run={tag}")] == [job.id]


@pytest.mark.parametrize("key", ["", "a=b", "a,b", "a b", "x" * 129])
def test_a_bad_label_key_is_invalid_argument(finished_job: gradlab.Job, key: str) -> None:
    labels = dict(finished_job.labels)
    with pytest.raises(gradlab.InvalidArgument) as e:
        finished_job.update(labels={key: "v"})
    assert e.value.field == "labels"
    with pytest.raises(gradlab.InvalidArgument) as e:
        finished_job.update(remove_labels=[key])
    assert e.value.field == "labels"
    assert finished_job.refresh().labels == labels, "nothing changed"


def test_update_errors(client: gradlab.Client, finished_job: gradlab.Job) -> None:
    with pytest.raises(gradlab.InvalidArgument, match="both set and removed") as e:
        finished_job.update(labels={"k": "v"}, remove_labels=["k"])
    assert e.value.field == "labels"
    with pytest.raises(gradlab.InvalidArgument) as e:
        finished_job.update(name="n" * 1025)
    assert e.value.field == "name"
    with pytest.raises(TypeError, match="remove_labels"):
        finished_job.update(remove_labels="k")
    with pytest.raises(TypeError, match="labels"):
        finished_job.update(labels=["k=v"])  # type: ignore[arg-type]
    ghost = client.submit(name="ghost", **{**SMALL, "steps": 5}).wait(timeout=60)
    ghost.delete()
    with pytest.raises(gradlab.NotFound):
        ghost.update(name="x")


def test_managing_needs_the_token(secure_server: LocalServer) -> None:
    with secure_server.client() as c:
        job = c.submit(name="guarded", **{**SMALL, "steps": 5}).wait(timeout=60)
    with gradlab.Client(secure_server.url, ca_cert=secure_server.ca_cert) as anon:
        with pytest.raises(gradlab.Unauthenticated):
            anon.job(job.id)
        # The job as the client with the token read it, but asked about through one without.
        unauth = gradlab.Job(anon._conn, job.proto)
        with pytest.raises(gradlab.Unauthenticated):
            unauth.delete()
        with pytest.raises(gradlab.Unauthenticated):
            unauth.update(name="hijacked")
    with gradlab.Client(secure_server.url, token="wrong", ca_cert=secure_server.ca_cert) as bad:
        with pytest.raises(gradlab.Unauthenticated):
            gradlab.Job(bad._conn, job.proto).delete()
    with secure_server.client() as c:
        assert c.job(job.id).name == "guarded", "still there, unchanged"
        c.job(job.id).delete()
        with pytest.raises(gradlab.NotFound):
            c.job(job.id)
