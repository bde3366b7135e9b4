"""How the client reaches its server: the URL, TLS, the token, and errors turned into gradlab's."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import grpc

from ._proto import gradlab_pb2_grpc
from .errors import InvalidArgument, from_rpc_error

#: Where a client looks without ``server=`` or GRADLAB_SERVER (the CLI's default too).
DEFAULT_SERVER = "http://127.0.0.1:50051"

#: The largest message the client accepts (the CLI's limit too); history arrives in far smaller chunks.
MAX_RECEIVE_BYTES = 256 << 20


def check_token(token: str) -> None:
    """A token travels as an HTTP/2 header value: printable ASCII, no spaces (as the server requires)."""
    if not token:
        raise InvalidArgument("token (GRADLAB_TOKEN): must not be empty", field="token")
    bad = next((c for c in token if not (33 <= ord(c) <= 126)), None)
    if bad is not None:
        raise InvalidArgument(
            f"token (GRADLAB_TOKEN): must be printable ASCII without spaces, found {bad!r}", field="token"
        )


def target_of(server: str) -> tuple[str, bool]:
    """(gRPC target ``host:port``, TLS?) of a server URL: ``http://HOST:PORT`` or ``https://HOST:PORT``."""
    text = server.strip()
    parts = urlsplit(text if "://" in text else f"http://{text}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"server: expected http://HOST:PORT or https://HOST:PORT, got {server!r}", field="server")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidArgument(f"server: {server!r} has a path; give only http(s)://HOST:PORT", field="server")
    try:
        port = parts.port
    except ValueError as e:
        raise InvalidArgument(f"server: bad port in {server!r}: {e}", field="server") from None
    tls = parts.scheme == "https"
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{host}:{port or (443 if tls else 80)}", tls


class Connection:
    """A channel to one server, sending the token with every call and raising :class:`gradlab.Error`."""

    def __init__(
        self,
        server: str | None,
        token: str | None,
        ca_cert: str | os.PathLike[str] | None,
        timeout: float | None,
    ) -> None:
        self.server = server or os.environ.get("GRADLAB_SERVER") or DEFAULT_SERVER
        token = token if token is not None else os.environ.get("GRADLAB_TOKEN") or None
        ca = ca_cert if ca_cert is not None else os.environ.get("GRADLAB_CA_CERT") or None
        target, tls = target_of(self.server)
        if token is not None:
            check_token(token)
        self.metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout = timeout
        options = [
            ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            ("grpc.primary_user_agent", "gradlab-python"),
            # Streams are read on the calling thread instead of handed over from grpc's: about
            # twice the messages per second a watcher of a fast job can take.
            ("grpc.experimental.single_threaded_unary_stream", 1),
        ]
        if tls:
            roots = None
            if ca is not None:
                try:
                    roots = pathlib.Path(ca).read_bytes()
                except OSError as e:
                    raise InvalidArgument(f"ca_cert {ca}: {e.strerror or e}", field="ca_cert") from None
                if b"-----BEGIN CERTIFICATE-----" not in roots:
                    raise InvalidArgument(f"ca_cert {ca}: no PEM certificate in it", field="ca_cert")
            creds = grpc.ssl_channel_credentials(root_certificates=roots)
            self.channel = grpc.secure_channel(target, creds, options=options)
        else:
            if ca is not None:
                raise InvalidArgument(f"ca_cert is for https:// servers, and {self.server} is not one", field="ca_cert")
            self.channel = grpc.insecure_channel(target, options=options)
        self.stub = gradlab_pb2_grpc.ExperimentsStub(self.channel)  # type: ignore[no-untyped-call]
        self._raw: dict[str, Any] = {}

    def unary(self, method: str, request: Any, timeout: float | None = None) -> Any:
        """Calls a unary method (``"GetJob"``); its answer, or a :class:`gradlab.Error`."""
        call = getattr(self.stub, method)
        try:
            return call(request, metadata=self.metadata, timeout=timeout if timeout is not None else self.timeout)
        except grpc.RpcError as e:
            raise from_rpc_error(e, self.server) from None

    def stream(self, method: str, request: Any, timeout: float | None = None) -> Iterator[Any]:
        """Calls a server-streaming method and yields its messages; the call is cancelled when the
        iterator is closed or dropped early."""
        call = getattr(self.stub, method)(request, metadata=self.metadata, timeout=timeout)
        try:
            yield from call
        except grpc.RpcError as e:
            raise from_rpc_error(e, self.server) from None
        finally:
            call.cancel()

    def raw_stream(self, method: str, request: Any, timeout: float | None = None) -> Iterator[bytes]:
        """Like :meth:`stream`, but yields each message's serialized bytes (for readers that decode
        them faster than protobuf's Python objects do)."""
        multi = self._raw.get(method)
        if multi is None:
            multi = self.channel.unary_stream(
                f"/gradlab.v1.Experiments/{method}",
                request_serializer=type(request).SerializeToString,
                response_deserializer=None,
            )
            self._raw[method] = multi
        call = multi(request, metadata=self.metadata, timeout=timeout)
        try:
            yield from call
        except grpc.RpcError as e:
            raise from_rpc_error(e, self.server) from None
        finally:
            call.cancel()

    def close(self) -> None:
        self.channel.close()
