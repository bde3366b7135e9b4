//! `GET /api/jobs/{id}/weights?format=safetensors|npz&step=N`: a job's trained network as a
//! download, the file `ExportWeights` streams.

use axum::extract::{Path, RawQuery, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use super::auth::Authed;
use super::error::WebError;
use super::params::Params;
use super::{Web, parse_id};
use crate::runner::JobId;
use crate::runner::export::WeightsFormat;

pub async fn weights(
    _: Authed,
    State(web): State<Web>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    let id = JobId(parse_id(&id)?);
    let p = Params::parse(q.as_deref(), &["format", "step"])?;
    let format = match p.get("format") {
        None => WeightsFormat::Safetensors,
        Some(f) => f.parse().map_err(|e| WebError::param("format", e))?,
    };
    let file = web.runner.export(id, p.num::<u64>("step")?, format).await?;
    let name = format!("gradlab-job-{id}-step-{}.{format}", file.step);
    let disposition = format!("attachment; filename=\"{name}\"");
    Ok(([(CONTENT_TYPE, "application/octet-stream".to_string()), (CONTENT_DISPOSITION, disposition)], file.bytes)
        .into_response())
}
