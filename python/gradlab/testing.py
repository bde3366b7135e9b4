"""A throwaway ``gradlab serve`` for tests, benchmarks and notebooks: a real server process on a
free loopback port over a temporary SQLite database.

    with LocalServer() as server:              # GRADLAB_BIN, else `gradlab` on PATH
        client = server.client()
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from .client import Client


def find_binary(path: str | os.PathLike[str] | None = None) -> str:
    """The gradlab binary: ``path``, else GRADLAB_BIN, else ``gradlab`` on PATH."""
    candidate = path or os.environ.get("GRADLAB_BIN") or shutil.which("gradlab")
    if not candidate or not pathlib.Path(candidate).is_file():
        raise FileNotFoundError(
            f"no gradlab binary at {candidate!r}: build it (cargo build) and set GRADLAB_BIN to its path"
        )
    return str(candidate)


class LocalServer:
    """Runs ``gradlab serve --addr 127.0.0.1:0`` until :meth:`stop` (or the ``with`` block's end).

    Args:
        binary: the gradlab binary (see :func:`find_binary`).
        args: more ``serve`` flags (``["--token", "t", "--workers", "1"]``).
        database: the database (default: a SQLite file in a temporary folder, removed at stop).
        workers: training workers (``--workers``); default the server's (one per CPU).
        token, tls_dir: ``--token`` and, from a folder ``gradlab cert`` wrote, ``--tls-cert`` and
            ``--tls-key``; :meth:`client` then connects with them.
        startup_timeout: seconds to wait for the server to listen.
    """

    def __init__(
        self,
        binary: str | os.PathLike[str] | None = None,
        args: Sequence[str] = (),
        database: str | None = None,
        workers: int | None = None,
        token: str | None = None,
        tls_dir: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.binary = find_binary(binary)
        self._tmp = tempfile.TemporaryDirectory(prefix="gradlab-server-")
        tmp = pathlib.Path(self._tmp.name)
        self.database = database or f"sqlite://{tmp / 'gradlab.db'}"
        self.log_path = tmp / "server.log"
        self.token = token
        self.ca_cert = str(pathlib.Path(tls_dir) / "ca.pem") if tls_dir else None
        cmd = [self.binary, "serve", "--addr", "127.0.0.1:0", "--database", self.database, "--log-format", "json"]
        if workers is not None:
            cmd += ["--workers", str(workers)]
        if tls_dir:
            d = pathlib.Path(tls_dir)
            cmd += ["--tls-cert", str(d / "server.pem"), "--tls-key", str(d / "server-key.pem")]
        cmd += list(args)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRADLAB_")}
        if token is not None:
            env["GRADLAB_TOKEN"] = token
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._log, env=env)
        try:
            self.addr = self._wait_for_address(startup_timeout)
        except BaseException:
            self.stop()
            raise
        scheme = "https" if tls_dir else "http"
        host = "localhost" if tls_dir else "127.0.0.1"
        self.url = f"{scheme}://{host}:{self.addr.rsplit(':', 1)[1]}"

    def _wait_for_address(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_path.read_text(errors="replace").splitlines():
                try:
                    fields = json.loads(line).get("fields", {})
                except ValueError:
                    continue
                if fields.get("message") == "gradlab serving":
                    return str(fields["addr"])
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"gradlab serve exited with {self.process.returncode}: {self.log_path.read_text(errors='replace')}"
                )
            time.sleep(0.05)
        raise TimeoutError(f"gradlab serve did not listen within {timeout} s: {self.log_path.read_text()}")

    def client(self, **kwargs: Any) -> Client:
        """A client of this server (with its token and CA unless given)."""
        kwargs.setdefault("token", self.token)
        kwargs.setdefault("ca_cert", self.ca_cert)
        return Client(self.url, **kwargs)

    def log(self) -> str:
        """What the server logged so far (JSON lines)."""
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; removes the temporary folder."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        self._tmp.cleanup()

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
