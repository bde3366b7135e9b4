//! The one place internal errors become gRPC statuses.

use tonic::{Code, Status};

use crate::engine::spec::FieldError;
use crate::runner::{RunnerError, StoreError};

pub fn invalid(e: FieldError) -> Status {
    Status::invalid_argument(e.to_string())
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
