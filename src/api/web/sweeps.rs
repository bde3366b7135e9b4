//! Sweeps: list, one sweep, its report, and its progress live; the same runner and store calls
//! as the `Experiments` service.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::auth::Authed;
use super::error::WebError;
use super::params::Params;
use super::{Web, json as js, parse_id, sse};
use crate::api::convert::MAX_PAGE_SIZE;
use crate::runner::sweep::DEFAULT_MARGIN;
use crate::runner::{PageRequest, SweepEvent, SweepId};

/// `GET /api/sweeps`: one page of sweeps, newest first.
pub async fn list(_: Authed, State(web): State<Web>, RawQuery(q): RawQuery) -> Result<Json<Value>, WebError> {
    let p = Params::parse(q.as_deref(), &["page_size", "page_token"])?;
    let size: u32 = p.num("page_size")?.unwrap_or(0);
    if size > MAX_PAGE_SIZE {
        return Err(WebError::param("page_size", format!("{size} exceeds the limit {MAX_PAGE_SIZE}")));
    }
    let page = PageRequest { size, token: p.get("page_token").map(str::to_string) };
    let (sweeps, next) = web.runner.store().list_sweeps(&page).await?;
    let sweeps: Vec<_> = sweeps.iter().map(js::sweep).collect();
    Ok(Json(json!({ "sweeps": sweeps, "next_page_token": next.unwrap_or_default() })))
}

/// `GET /api/sweeps/{id}`.
pub async fn get(_: Authed, State(web): State<Web>, Path(id): Path<String>) -> Result<Json<Value>, WebError> {
    let sweep = web.runner.get_sweep(SweepId(parse_id(&id)?)).await?;
    Ok(Json(json!(js::sweep(&sweep))))
}

/// `POST /api/sweeps/{id}/cancel`.
pub async fn cancel(_: Authed, State(web): State<Web>, Path(id): Path<String>) -> Result<Json<Value>, WebError> {
    let sweep = web.runner.cancel_sweep(SweepId(parse_id(&id)?)).await?;
    Ok(Json(json!(js::sweep(&sweep))))
}

/// `DELETE /api/sweeps/{id}?cancel=true`: the sweep and its jobs (as `DeleteSweep`).
pub async fn delete(
    _: Authed,
    State(web): State<Web>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, WebError> {
    let id = parse_id(&id)?;
    let cancel = Params::parse(q.as_deref(), &["cancel"])?.num::<bool>("cancel")?.unwrap_or(false);
    let n = web.runner.delete_sweep(SweepId(id), cancel).await?;
    Ok(Json(json!({ "deleted": id, "jobs_deleted": n })))
}

/// `GET /api/sweeps/{id}/report?margin=`: what `GetSweepReport` answers.
pub async fn report(
    _: Authed,
    State(web): State<Web>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, WebError> {
    let p = Params::parse(q.as_deref(), &["margin"])?;
    let margin = p.num("margin")?.unwrap_or(DEFAULT_MARGIN);
    let (sweep, report) = web.runner.sweep_report(SweepId(parse_id(&id)?), margin).await?;
    Ok(Json(json!({ "sweep": js::sweep(&sweep), "report": report })))
}

/// `GET /api/sweeps/{id}/live`: events `sweep` (first, and last once every job has ended),
/// `job` (`{"job", "counts"}`) for each job's state as it moves, then `end`.
pub async fn live(_: Authed, State(web): State<Web>, Path(id): Path<String>) -> Result<impl IntoResponse, WebError> {
    let id = SweepId(parse_id(&id)?);
    web.runner.get_sweep(id).await?;
    let slot = web.runner.watch_slot()?;
    let (tx, rx) = mpsc::channel(64);
    let runner = web.runner.clone();
    tokio::spawn(async move {
        let _slot = slot;
        runner.watch_sweep(id, tx).await
    });
    let events = ReceiverStream::new(rx).map(|item| match item {
        Ok(SweepEvent::Sweep(s)) => sse::event("sweep", &js::sweep(&s)),
        Ok(SweepEvent::Job { job, counts }) => sse::event("job", &json!({ "job": &*job, "counts": counts })),
        Err(e) => sse::error_event(e.into()),
    });
    Ok(sse::respond(events))
}
