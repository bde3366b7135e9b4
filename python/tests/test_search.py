"""ListJobs' filter grammar and sort through the client: what the server returns is checked against
an expectation computed here from the jobs' own specs, labels and summaries."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

import gradlab


@pytest.fixture(scope="module")
def searched(client: gradlab.Client) -> Iterator[tuple[str, list[gradlab.Job]]]:
    """Eight finished jobs of differing depth, lr and team, and a long one that has no result
    while the tests run, all labelled ``run=<tag>``."""
    tag = "t" + uuid.uuid4().hex[:8]
    finished = [
        client.submit(
            name=f"{tag}-{i}",
            labels={"run": tag, "team": "vision" if i % 4 == 0 else "speech"},
            activation="tanh",
            depth=1 + i % 3,
            width=8,
            lr=lr,
            batch=16,
            steps=40,
            eval_every=20,
            seed=i,
        ).wait(timeout=120)
        for i, lr in enumerate([0.001, 0.3, 0.05, 0.2, 0.01, 0.1, 0.5, 0.02])
    ]
    # Minutes of training at the least: it is still going when the fixture cancels it.
    long = client.submit(name=f"{tag}-long", labels={"run": tag}, depth=2, width=64, batch=256, steps=1_000_000)
    assert long.summary is None
    yield tag, [*finished, long]
    long.cancel()


def _accuracy(j: gradlab.Job) -> float | None:
    return j.summary.test_accuracy if j.summary else None


def _by_accuracy(jobs: list[gradlab.Job], descending: bool) -> list[int]:
    """The server's order: by accuracy, ties by id (both in the direction asked), jobs without
    an accuracy last in id order of that direction."""
    scored = sorted((j for j in jobs if _accuracy(j) is not None), key=lambda j: (_accuracy(j), j.id))
    unscored = sorted(j.id for j in jobs if _accuracy(j) is None)
    if descending:
        return [j.id for j in reversed(scored)] + unscored[::-1]
    return [j.id for j in scored] + unscored


def test_filter_and_sort_by_accuracy_over_pages(
    client: gradlab.Client, searched: tuple[str, list[gradlab.Job]]
) -> None:
    tag, jobs = searched
    shallow = [j for j in jobs if j.spec.depth <= 2 and j.labels.get("team") != "vision" and _accuracy(j) is not None]
    # The second-lowest accuracy, so that the bound leaves some out when the accuracies differ;
    # repr round-trips, so the server compares with the very value stored.
    bound = sorted(a for j in shallow if (a := _accuracy(j)) is not None)[1]
    text = f"label.run = {tag} and depth <= 2 and label.team != vision and test_accuracy >= {bound!r}"
    want = [j for j in shallow if j.summary and j.summary.test_accuracy >= bound]
    assert len(want) >= 2
    got = client.jobs(filter=text, sort="test_accuracy", descending=True, page_size=1)
    assert [j.id for j in got] == _by_accuracy(want, descending=True)
    got = client.jobs(filter=text, sort="test_accuracy", page_size=1)
    assert [j.id for j in got] == _by_accuracy(want, descending=False)
    frame = client.jobs_frame(filter=text, sort="test_accuracy", descending=True, page_size=1, limit=2)
    assert frame["id"].tolist() == _by_accuracy(want, descending=True)[:2]


def test_sort_puts_jobs_without_a_result_last(client: gradlab.Client, searched: tuple[str, list[gradlab.Job]]) -> None:
    tag, jobs = searched
    for descending in (True, False):
        got = client.jobs(filter=f"label.run = {tag}", sort="test_accuracy", descending=descending, page_size=2)
        assert [j.id for j in got] == _by_accuracy(jobs, descending), descending
    by_depth = client.jobs(filter=f"label.run={tag}, depth >= 2", sort="depth", descending=True, page_size=3)
    want = sorted((j for j in jobs if j.spec.depth >= 2), key=lambda j: (j.spec.depth, j.id), reverse=True)
    assert [j.id for j in by_depth] == [j.id for j in want]


def test_filter_combines_with_the_other_filters(
    client: gradlab.Client, searched: tuple[str, list[gradlab.Job]]
) -> None:
    tag, jobs = searched
    got = client.jobs(label=f"run={tag}", min_depth=2, filter="label.team != vision")
    want = [j.id for j in reversed(jobs) if j.spec.depth >= 2 and j.labels.get("team") != "vision"]
    assert [j.id for j in got] == want and want
    ids = lambda found: [j.id for j in found]
    assert ids(client.jobs(label=f"run={tag}", filter=" ")) == ids(client.jobs(label=f"run={tag}")) == ids(jobs[::-1])


def test_bad_filter_names_the_field_and_column(client: gradlab.Client) -> None:
    with pytest.raises(gradlab.InvalidArgument) as e:
        client.jobs(filter="depth <= 8 and acc > 0.9")
    assert e.value.field == "filter"
    assert "at column 16" in e.value.message and 'unknown field "acc"' in e.value.message, e.value.message
    with pytest.raises(gradlab.InvalidArgument) as e:
        client.jobs(filter="depth <=")
    assert e.value.field == "filter" and "column 9" in e.value.message, e.value.message
    with pytest.raises(gradlab.InvalidArgument, match="unknown sort key") as e:
        client.jobs(sort="accuracy")
    assert e.value.field == "sort_by"
