//! Errors as the dashboard's endpoints answer them: an HTTP status and `{"error", "field"}`.
//! The status comes from the gRPC status the same error gets (`api::status`), so both faces of
//! the server classify every error alike.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tonic::Code;

use crate::api::status::{FIELD_KEY, from_runner, from_store, invalid};
use crate::engine::spec::FieldError;
use crate::runner::{RunnerError, StoreError};

#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
    /// The request parameter the error is about, when it is about one.
    pub field: Option<String>,
}

impl WebError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        WebError { status, message: message.into(), field: None }
    }

    pub fn param(name: &str, message: impl std::fmt::Display) -> Self {
        WebError { status: StatusCode::BAD_REQUEST, message: format!("{name}: {message}"), field: Some(name.into()) }
    }

    pub fn unauthorized(message: &str) -> Self {
        WebError::new(StatusCode::UNAUTHORIZED, message)
    }
}

fn http_status(code: Code) -> StatusCode {
    match code {
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<tonic::Status> for WebError {
    fn from(s: tonic::Status) -> Self {
        let field = s.metadata().get(FIELD_KEY).and_then(|v| v.to_str().ok()).map(str::to_string);
        WebError { status: http_status(s.code()), message: s.message().to_string(), field }
    }
}

impl From<RunnerError> for WebError {
    fn from(e: RunnerError) -> Self {
        from_runner(e).into()
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        from_store(e).into()
    }
}

impl From<FieldError> for WebError {
    fn from(e: FieldError) -> Self {
        invalid(e).into()
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let body = match &self.field {
            Some(f) => json!({ "error": self.message, "field": f }),
            None => json!({ "error": self.message }),
        };
        (self.status, Json(body)).into_response()
    }
}
