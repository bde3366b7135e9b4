"""What the tests share besides fixtures."""

from __future__ import annotations

import os
import subprocess

from gradlab.testing import LocalServer

#: A small, quick job.
SMALL = dict(activation="tanh", depth=3, width=8, batch=16, steps=200, eval_every=50, seed=1)


def run_cli(gradlab_bin: str, server: LocalServer, *args: str) -> str:
    """Runs a gradlab client command against ``server``; its stdout."""
    cmd = [gradlab_bin, "--server", server.url, *args]
    if server.token:
        cmd += ["--token", server.token]
    if server.ca_cert:
        cmd += ["--ca-cert", server.ca_cert]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADLAB_")}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr}")
    return done.stdout
