"""Fixtures: real `gradlab serve` processes on free loopback ports over temporary SQLite databases.

The binary comes from GRADLAB_BIN, default <repo>/target/debug/gradlab (CI builds it first).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
from collections.abc import Iterator

import pytest
from helpers import SMALL, run_cli

import gradlab
from gradlab.testing import LocalServer

REPO = pathlib.Path(__file__).resolve().parents[2]

# The tests say which server, token and CA each client uses; none comes from the environment.
for _name in ("GRADLAB_SERVER", "GRADLAB_TOKEN", "GRADLAB_CA_CERT"):
    os.environ.pop(_name, None)


@pytest.fixture(scope="session")
def gradlab_bin() -> str:
    path = os.environ.get("GRADLAB_BIN") or str(REPO / "target" / "debug" / "gradlab")
    if not pathlib.Path(path).is_file():
        raise RuntimeError(f"no gradlab binary at {path}: run `cargo build` first, or set GRADLAB_BIN")
    return path


@pytest.fixture(scope="session")
def server(gradlab_bin: str) -> Iterator[LocalServer]:
    """The shared server: two workers, default limits."""
    with LocalServer(gradlab_bin, workers=2) as s:
        yield s


@pytest.fixture(scope="session")
def client(server: LocalServer) -> Iterator[gradlab.Client]:
    with server.client() as c:
        yield c


@pytest.fixture(scope="session")
def idle_server(gradlab_bin: str) -> Iterator[LocalServer]:
    """A server that trains nothing (--workers 0): jobs stay queued."""
    with LocalServer(gradlab_bin, workers=0) as s:
        yield s


@pytest.fixture(scope="session")
def limited_server(gradlab_bin: str) -> Iterator[LocalServer]:
    """Trains nothing, holds at most 2 unfinished jobs and 1 watch stream."""
    with LocalServer(gradlab_bin, workers=0, args=["--max-queued-jobs", "2", "--max-watchers", "1"]) as s:
        yield s


@pytest.fixture(scope="session")
def tls_dir(gradlab_bin: str, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A local CA and a server certificate for localhost, 127.0.0.1 and ::1 (`gradlab cert`)."""
    out = tmp_path_factory.mktemp("tls")
    subprocess.run([gradlab_bin, "cert", "--out", str(out)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def secure_server(gradlab_bin: str, tls_dir: pathlib.Path) -> Iterator[LocalServer]:
    """TLS and a token."""
    with LocalServer(gradlab_bin, workers=1, token="s3cret-token", tls_dir=tls_dir) as s:
        yield s


@pytest.fixture(scope="session")
def cli(gradlab_bin: str, server: LocalServer):
    """``cli("history", "3", "--format", "csv")`` against the shared server."""
    return lambda *args: run_cli(gradlab_bin, server, *args)


@pytest.fixture(scope="session")
def finished_job(client: gradlab.Client) -> gradlab.Job:
    """A small job that succeeded."""
    return client.submit(name="finished", **SMALL).wait(timeout=120)
