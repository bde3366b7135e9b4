"""gradlab's Python client: submit training jobs that measure every layer's gradients, watch them,
and read their histories as pandas DataFrames.

    import gradlab
    client = gradlab.Client()                  # GRADLAB_SERVER, else http://127.0.0.1:50051
    job = client.submit(activation="tanh", depth=16, width=64, steps=1000)
    job.wait()
    df = job.history(metrics="grad_norm")      # step, layer, metric, value
"""

from __future__ import annotations

from .client import Client
from .errors import (
    Aborted,
    AlreadyExists,
    Cancelled,
    DataLoss,
    DeadlineExceeded,
    Error,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Unknown,
)
from .jobs import Job, JobEvent, StateEvent
from .models import (
    Axis,
    Checkpoint,
    EvalEvent,
    Histogram,
    JobCounts,
    JobSpec,
    LayerStats,
    MeanField,
    StepEvent,
    Summary,
    Thresholds,
)
from .presets import Preset
from .sweeps import Sweep, SweepEvent, SweepJobEvent, SweepProgress, SweepReport

__version__ = "0.1.0"

__all__ = [
    "Aborted",
    "AlreadyExists",
    "Axis",
    "Cancelled",
    "Checkpoint",
    "Client",
    "DataLoss",
    "DeadlineExceeded",
    "Error",
    "EvalEvent",
    "FailedPrecondition",
    "Histogram",
    "Internal",
    "InvalidArgument",
    "Job",
    "JobCounts",
    "JobEvent",
    "JobSpec",
    "LayerStats",
    "MeanField",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "Preset",
    "ResourceExhausted",
    "StateEvent",
    "StepEvent",
    "Summary",
    "Sweep",
    "SweepEvent",
    "SweepJobEvent",
    "SweepProgress",
    "SweepReport",
    "Thresholds",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
]
