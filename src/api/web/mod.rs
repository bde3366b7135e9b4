//! The dashboard: the page (embedded files) and the JSON and server-sent-event endpoints it
//! reads, served by `gradlab serve` on the gRPC listener (HTTP/1.1 and HTTP/2 beside gRPC).
//!
//! Every endpoint is a thin client of the runner and store, as the gRPC service is: the same
//! request conversions and checks (`api::convert`), the same history reader and downsampler,
//! the same watchers, the same report. Nothing here filters, downsamples or aggregates.

mod assets;
mod auth;
mod error;
mod jobs;
mod json;
mod params;
mod sse;
mod sweeps;
mod weights;

use axum::Router;
use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::runner::Runner;
pub use auth::WebAuth;
use error::WebError;

/// What every handler gets.
#[derive(Clone)]
pub struct Web {
    runner: Runner,
    auth: WebAuth,
}

/// The dashboard's routes. Paths it does not know answer 404, except gRPC calls to a service
/// the server does not have, which get gRPC's UNIMPLEMENTED as before.
pub fn router(runner: Runner, auth: WebAuth) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/jobs/{id}", get(assets::index))
        .route("/sweeps", get(assets::index))
        .route("/sweeps/{id}", get(assets::index))
        .route("/compare", get(assets::index))
        .route("/static/{*path}", get(assets::asset))
        .route("/api/session", get(auth::session))
        .route("/api/login", post(auth::login))
        .route("/api/logout", post(auth::logout))
        .route("/api/jobs", get(jobs::list))
        .route("/api/jobs/{id}", get(jobs::get).delete(jobs::delete).patch(jobs::update))
        .route("/api/jobs/{id}/cancel", post(jobs::cancel))
        .route("/api/jobs/{id}/history", get(jobs::history))
        .route("/api/jobs/{id}/live", get(jobs::live))
        .route("/api/jobs/{id}/histograms", get(jobs::histograms))
        .route("/api/jobs/{id}/weights", get(weights::weights))
        .route("/api/changes", get(jobs::changes))
        .route("/api/sweeps", get(sweeps::list))
        .route("/api/sweeps/{id}", get(sweeps::get).delete(sweeps::delete))
        .route("/api/sweeps/{id}/cancel", post(sweeps::cancel))
        .route("/api/sweeps/{id}/report", get(sweeps::report))
        .route("/api/sweeps/{id}/live", get(sweeps::live))
        .fallback(not_found)
        .with_state(Web { runner, auth })
}

fn parse_id(text: &str) -> Result<i64, WebError> {
    text.parse().map_err(|_| WebError::param("id", format!("{text:?} is not an id")))
}

async fn not_found(req: Request<Body>) -> Response {
    let grpc = req.headers().get(CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if grpc {
        let (parts, ()) = tonic::Status::unimplemented("").into_http::<()>().into_parts();
        return Response::from_parts(parts, Body::empty());
    }
    WebError::new(StatusCode::NOT_FOUND, format!("no such page: {}", req.uri().path())).into_response()
}
