//! The one place internal errors become gRPC statuses.

use tonic::{Code, Status};

use crate::engine::spec::FieldError;
use crate::runner::{RunnerError, StoreError};

/// The metadata key naming the request field an INVALID_ARGUMENT is about, so that a client can
/// point at it (the CLI names the flag its user typed) without parsing the message.
pub const FIELD_KEY: &str = "gradlab-field";

pub fn invalid(e: FieldError) -> Status {
    let mut status = Status::invalid_argument(e.to_string());
    if let Ok(v) = e.field.parse() {
        status.metadata_mut().insert(FIELD_KEY, v);
    }
    status
}

pub fn from_runner(e: RunnerError) -> Status {
    match e {
        RunnerError::NotFound(id) => Status::not_found(format!("job {id} not found")),
        RunnerError::SweepNotFound(id) => Status::not_found(format!("sweep {id} not found")),
        RunnerError::Invalid(f) => invalid(f),
        RunnerError::FailedPrecondition(m) => Status::failed_precondition(m),
        RunnerError::ShuttingDown => Status::unavailable("server is shutting down"),
        RunnerError::PermissionDenied(m) => Status::permission_denied(m),
        RunnerError::ResourceExhausted(m) => Status::resource_exhausted(m),
        RunnerError::Store(s) => from_store(s),
    }
}

pub fn from_store(e: StoreError) -> Status {
    match e {
        StoreError::NotFound(id) => Status::not_found(format!("job {id} not found")),
        StoreError::SweepNotFound(id) => Status::not_found(format!("sweep {id} not found")),
        StoreError::Invalid(m) => Status::invalid_argument(m),
        StoreError::Unavailable(m) => Status::unavailable(format!("database unavailable: {m}")),
        StoreError::LeaseLost(id) => Status::failed_precondition(format!("job {id} is claimed by another worker")),
        StoreError::Active(id, state) => Status::failed_precondition(format!(
            "job {id} is {state}: cancel it first (gradlab rm --cancel, or ask the delete to cancel it)"
        )),
        e @ StoreError::HasForks(..) => Status::failed_precondition(e.to_string()),
        StoreError::Full(n, max) => {
            Status::resource_exhausted(format!("{n} jobs are queued or running, the limit is {max}"))
        }
        StoreError::Database(m) => {
            tracing::error!(error = %m, "database error");
            Status::new(Code::Internal, format!("database error: {m}"))
        }
        e @ (StoreError::Corrupt { .. } | StoreError::CorruptSweep { .. }) => {
            tracing::error!(error = %e, "corrupt stored data");
            Status::new(Code::DataLoss, e.to_string())
        }
    }
}
