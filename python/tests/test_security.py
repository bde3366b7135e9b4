"""Tokens, TLS and the environment defaults shared with the CLI."""

from __future__ import annotations

import pathlib

import pytest
from helpers import SMALL, run_cli

import gradlab
from gradlab.testing import LocalServer


def test_token_and_tls(secure_server: LocalServer, gradlab_bin: str) -> None:
    assert secure_server.url.startswith("https://localhost:")
    with secure_server.client() as c:
        job = c.submit(name="secure", **SMALL).wait(timeout=120)
        assert job.state == "succeeded"
        assert len(job.history(layers=[0], metrics="grad_norm")) == 200
        assert any(isinstance(e, gradlab.StepEvent) for e in job.watch(from_step=199))
    # The CLI reads it back over the same TLS and token.
    assert str(job.id) in run_cli(gradlab_bin, secure_server, "ls")


def test_tls_by_ip_address(secure_server: LocalServer) -> None:
    # `gradlab cert` puts 127.0.0.1 in the certificate too.
    port = secure_server.url.rsplit(":", 1)[1]
    with gradlab.Client(f"https://127.0.0.1:{port}", token=secure_server.token, ca_cert=secure_server.ca_cert) as c:
        c.jobs(limit=1)


def test_an_untrusted_certificate_is_unavailable(
    secure_server: LocalServer, tmp_path: pathlib.Path, gradlab_bin: str
) -> None:
    import subprocess

    other = tmp_path / "other-ca"
    subprocess.run([gradlab_bin, "cert", "--out", str(other)], check=True, capture_output=True)
    with gradlab.Client(secure_server.url, token=secure_server.token, ca_cert=other / "ca.pem") as c:
        with pytest.raises(gradlab.Unavailable, match=f"cannot reach the gradlab server at {secure_server.url}"):
            c.jobs()


def test_plaintext_to_a_tls_server_is_unavailable(secure_server: LocalServer) -> None:
    port = secure_server.url.rsplit(":", 1)[1]
    with gradlab.Client(f"http://127.0.0.1:{port}", token=secure_server.token) as c:
        with pytest.raises(gradlab.Unavailable, match=f"http://127.0.0.1:{port}"):
            c.jobs()


def test_environment_defaults(secure_server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADLAB_SERVER", secure_server.url)
    monkeypatch.setenv("GRADLAB_TOKEN", secure_server.token or "")
    monkeypatch.setenv("GRADLAB_CA_CERT", secure_server.ca_cert or "")
    with gradlab.Client() as c:
        assert c.server == secure_server.url
        c.jobs(limit=1)
    # Arguments win over the environment.
    with gradlab.Client(token="wrong") as c:
        with pytest.raises(gradlab.Unauthenticated):
            c.jobs(limit=1)


def test_default_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRADLAB_SERVER", raising=False)
    assert gradlab.Client().server == "http://127.0.0.1:50051"
    assert repr(gradlab.Client("127.0.0.1:7")) == "<gradlab.Client 127.0.0.1:7>"
