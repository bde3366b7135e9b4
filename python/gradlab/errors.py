"""Errors: every failure of a call is a :class:`gradlab.Error` carrying the gRPC status.

A server refusal names the request field it is about (``gradlab-field`` trailing metadata, e.g.
``depth`` or ``base.lr``); :attr:`Error.field` holds it. Arguments this client refuses itself
before calling (a bad token, ``ca_cert`` with an ``http://`` server) raise :class:`InvalidArgument`
naming the parameter the same way.
"""

from __future__ import annotations

from typing import Any

import grpc

#: The trailing-metadata key naming the request field an INVALID_ARGUMENT is about.
FIELD_KEY = "gradlab-field"


class Error(Exception):
    """A failed gradlab call.

    Attributes:
        code: the gRPC status code.
        message: the server's message (or the client's, for failures that never reached one).
        field: the request field the server named, if any (``depth``, ``base.lr``, ``axes``...).
        server: the server URL the call went to.
    """

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        field: str | None = None,
        server: str | None = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.field = field
        self.server = server

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        extra = f", field={self.field!r}" if self.field else ""
        return f"{type(self).__name__}({self.message!r}{extra})"


class Cancelled(Error):
    """CANCELLED: the call was cancelled; tonic answers so ("Timeout expired") when the server's
    --request-timeout passes, or a deadline the client set had passed when the call reached it."""

    code = grpc.StatusCode.CANCELLED


class Unknown(Error):
    """UNKNOWN: a failure the server did not classify."""

    code = grpc.StatusCode.UNKNOWN


class InvalidArgument(Error, ValueError):
    """INVALID_ARGUMENT: the request is wrong and asking again will not help; :attr:`field` names what."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(Error, TimeoutError):
    """DEADLINE_EXCEEDED: the client's deadline passed (a ``timeout`` given to a call or to ``wait``)."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(Error, LookupError):
    """NOT_FOUND: no job or sweep with that id."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(Error):
    """ALREADY_EXISTS."""

    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(Error):
    """PERMISSION_DENIED: e.g. a dataset file outside the server's --data-dir."""

    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(Error):
    """RESOURCE_EXHAUSTED: a limit on what the server holds now (queued jobs, watchers, request size); try later."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(Error):
    """FAILED_PRECONDITION: the job or sweep is not in a state that allows it (e.g. cancelling a finished job)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(Error):
    """ABORTED."""

    code = grpc.StatusCode.ABORTED


class OutOfRange(Error):
    """OUT_OF_RANGE."""

    code = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(Error):
    """UNIMPLEMENTED: the server does not have this call (an older gradlab?)."""

    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(Error):
    """INTERNAL: the server failed (e.g. a database error)."""

    code = grpc.StatusCode.INTERNAL


class Unavailable(Error, ConnectionError):
    """UNAVAILABLE: the server cannot be reached (the message names its address), is shutting down, or
    has lost its database."""

    code = grpc.StatusCode.UNAVAILABLE


class DataLoss(Error):
    """DATA_LOSS: stored data is corrupt."""

    code = grpc.StatusCode.DATA_LOSS


class Unauthenticated(Error):
    """UNAUTHENTICATED: the server needs a token (``token=`` or GRADLAB_TOKEN) and got none or a wrong one."""

    code = grpc.StatusCode.UNAUTHENTICATED


#: The class raised for each status code.
BY_CODE: dict[grpc.StatusCode, type[Error]] = {
    cls.code: cls
    for cls in (
        Cancelled,
        Unknown,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        OutOfRange,
        Unimplemented,
        Internal,
        Unavailable,
        DataLoss,
        Unauthenticated,
    )
}

_NOT_RUNNING_HINT = (
    " (is a server running there? Start one with `gradlab serve`, or point Client(server=...) or GRADLAB_SERVER at one)"
)


def _field(e: Any) -> str | None:
    try:
        trailers = e.trailing_metadata() or ()
    except Exception:  # a call that never reached a server may have none to give
        return None
    for key, value in trailers:
        if key == FIELD_KEY:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def from_rpc_error(e: grpc.RpcError, server: str) -> Error:
    """The :class:`Error` for a failed call to ``server``."""
    code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
    details = (e.details() if hasattr(e, "details") else None) or str(code)
    if code is None:
        code = grpc.StatusCode.UNKNOWN
    cls = BY_CODE.get(code, Unknown)
    message = details
    if cls is Unavailable:
        if details.startswith(("failed to connect", "DNS resolution failed", "Socket closed", "Connection reset")) or (
            "connect" in details.lower() or "handshake" in details.lower()
        ):
            hint = _NOT_RUNNING_HINT if "refused" in details.lower() else ""
            message = f"cannot reach the gradlab server at {server}: {details}{hint}"
        else:
            message = f"gradlab server at {server}: {details}"
    return cls(message, code=code, field=_field(e), server=server)
