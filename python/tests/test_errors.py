"""Every failure is a gradlab.Error subclass carrying the status code, the message and the field."""

from __future__ import annotations

import socket

import grpc
import pytest
from helpers import SMALL

import gradlab
from gradlab._proto import gradlab_pb2 as pb
from gradlab.errors import BY_CODE, from_rpc_error
from gradlab.testing import LocalServer


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str, trailers=()) -> None:
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self):
        return self._trailers


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c is not grpc.StatusCode.OK])
def test_every_status_code_has_its_class(code: grpc.StatusCode) -> None:
    e = from_rpc_error(FakeRpcError(code, "what happened", (("gradlab-field", "depth"),)), "http://h:1")
    cls = BY_CODE[code]
    assert type(e) is cls and isinstance(e, gradlab.Error)
    assert cls.__name__ in gradlab.__all__ and getattr(gradlab, cls.__name__) is cls
    assert e.code is code and e.field == "depth" and e.server == "http://h:1"
    assert "what happened" in str(e)


def test_python_exception_families() -> None:
    assert issubclass(gradlab.InvalidArgument, ValueError)
    assert issubclass(gradlab.NotFound, LookupError)
    assert issubclass(gradlab.DeadlineExceeded, TimeoutError)
    assert issubclass(gradlab.Unavailable, ConnectionError)


def test_invalid_argument_names_the_field(client: gradlab.Client) -> None:
    for kwargs, field in [
        ({"depth": 0}, "depth"),
        ({"width": 0}, "width"),
        ({"lr": -1.0}, "lr"),
        ({"activation": "swishy"}, "activation"),
        ({"hidden": [4], "depth": 2}, "hidden"),
        ({"init": "he_normal", "sigma_w": 1.0}, "init"),
        ({"dataset": "csv:"}, "dataset"),
        ({"optimizer": "adam:2"}, "optimizer"),
        ({"steps": 10**9}, "steps"),
        ({"depth": 100, "width": 2000}, "hidden"),
    ]:
        with pytest.raises(gradlab.InvalidArgument) as e:
            client.submit(**kwargs)
        assert e.value.field == field, (kwargs, e.value)
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(gradlab.InvalidArgument, match="--max-steps") as e:
        client.submit(steps=2_000_000)
    assert e.value.field == "steps"


def test_client_side_argument_errors_are_invalid_arguments_too() -> None:
    with pytest.raises(gradlab.InvalidArgument, match="must be a whole number >= 0") as e:
        gradlab.Client("http://127.0.0.1:1").submit(depth=-1)
    assert e.value.field == "depth"
    with pytest.raises(gradlab.InvalidArgument) as e:
        gradlab.Client("ftp://example")
    assert e.value.field == "server"
    with pytest.raises(gradlab.InvalidArgument) as e:
        gradlab.Client("http://127.0.0.1:1", token="has space")
    assert e.value.field == "token"
    with pytest.raises(gradlab.InvalidArgument, match="https://") as e:
        gradlab.Client("http://127.0.0.1:1", ca_cert=__file__)
    assert e.value.field == "ca_cert"
    with pytest.raises(gradlab.InvalidArgument, match="no PEM certificate") as e:
        gradlab.Client("https://127.0.0.1:1", ca_cert=__file__)
    with pytest.raises(gradlab.InvalidArgument) as e:
        gradlab.Client("https://127.0.0.1:1", ca_cert="/nonexistent/ca.pem")
    assert e.value.field == "ca_cert"


def test_not_found(client: gradlab.Client) -> None:
    with pytest.raises(gradlab.NotFound, match="job 987654 not found") as e:
        client.job(987654)
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    ghost = gradlab.Job(client._conn, pb.Job(id=987654))
    for call in (ghost.refresh, ghost.cancel, lambda: list(ghost.watch()), ghost.history, ghost.wait):
        with pytest.raises(gradlab.NotFound):
            call()


def test_permission_denied_for_files_outside_the_data_dirs(client: gradlab.Client) -> None:
    with pytest.raises(gradlab.PermissionDenied, match="dataset") as e:
        client.submit(dataset="csv:/etc/passwd", **{k: v for k, v in SMALL.items() if k != "dataset"})
    assert e.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_failed_precondition(finished_job: gradlab.Job) -> None:
    with pytest.raises(gradlab.FailedPrecondition) as e:
        finished_job.cancel()
    assert str(finished_job.id) in e.value.message


def test_resource_exhausted_queue_and_watchers(limited_server: LocalServer) -> None:
    with limited_server.client() as c:
        a = c.submit(**SMALL)
        c.submit(**SMALL)
        with pytest.raises(gradlab.ResourceExhausted, match="limit is 2|--max-queued-jobs"):
            c.submit(**SMALL)
        watching = a.watch()
        assert isinstance(next(watching), gradlab.StateEvent)
        with pytest.raises(gradlab.ResourceExhausted, match="watch"):
            next(a.watch())
        watching.close()


def test_resource_exhausted_request_size(client: gradlab.Client) -> None:
    with pytest.raises(gradlab.ResourceExhausted, match="--max-request-bytes"):
        client.submit(labels={"big": "x" * 2_000_000}, **SMALL)


def test_deadline_exceeded() -> None:
    # A socket that accepts connections and never answers: the client's own deadline ends the call.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with gradlab.Client(url, timeout=0.5) as c:
            with pytest.raises(gradlab.DeadlineExceeded) as e:
                c.jobs()
        assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED and isinstance(e.value, TimeoutError)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_that_is_not_running_is_unavailable_naming_its_address() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with gradlab.Client(url) as c:
        for call in (c.jobs, lambda: c.job(1), lambda: c.submit(depth=2)):
            with pytest.raises(gradlab.Unavailable) as e:
                call()
            assert e.value.code == grpc.StatusCode.UNAVAILABLE and e.value.server == url
            assert f"cannot reach the gradlab server at {url}" in str(e.value)
            assert "gradlab serve" in str(e.value) and "GRADLAB_SERVER" in str(e.value)
        with pytest.raises(gradlab.Unavailable, match=url):
            list(gradlab.Job(c._conn, pb.Job(id=1)).watch())
        with pytest.raises(gradlab.Unavailable, match=url):
            gradlab.Job(c._conn, pb.Job(id=1)).history()


def test_unauthenticated(secure_server: LocalServer) -> None:
    with secure_server.client(token=None) as c:
        # token=None falls back to GRADLAB_TOKEN, which the tests do not set.
        with pytest.raises(gradlab.Unauthenticated, match="needs a token"):
            c.jobs()
    with secure_server.client(token="wrong") as c:
        with pytest.raises(gradlab.Unauthenticated, match="wrong token") as e:
            c.submit(**SMALL)
        assert e.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_errors_print_as_one_line(client: gradlab.Client) -> None:
    with pytest.raises(gradlab.InvalidArgument) as e:
        client.submit(depth=0)
    assert str(e.value) == "depth: must be at least 1"
    assert repr(e.value) == "InvalidArgument('depth: must be at least 1', field='depth')"
