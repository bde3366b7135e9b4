//! Jobs: list, one job, cancel, history, the live series stream, and every job's state
//! changes. Each handler turns its parameters into the gRPC request and takes the same
//! conversion, checks and runner or store call as the `Experiments` service.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::IntoResponse;
use axum::response::sse::Event;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::auth::Authed;
use super::error::WebError;
use super::params::Params;
use super::{Web, json as js, parse_id, sse};
use crate::api::{convert, pb};
use crate::engine::spec::FieldError;
use crate::engine::stats::Histogram;
use crate::engine::verdict::Verdict;
use crate::runner::{
    Change, HistoryQuery, JobFilter, JobId, JobState, JobUpdate, Order, PageRequest, SeriesEvent, live_series,
};

/// A gRPC field's error named by the query parameter that carries it here.
fn renamed(e: FieldError, names: &[(&str, &str)]) -> WebError {
    let field = names.iter().find(|(api, _)| *api == e.field).map_or(e.field.as_str(), |(_, web)| web);
    // The message may name other fields too ("5 is after to_step 2").
    let problem = names.iter().fold(e.problem.clone(), |p, (api, web)| p.replace(api, web));
    WebError::param(field, problem)
}

const LIST_PARAMS: &[&str] = &[
    "state",
    "activation",
    "min_depth",
    "max_depth",
    "label",
    "verdict",
    "name",
    "sweep",
    "filter",
    "sort",
    "order",
    "page_size",
    "page_token",
];

/// `GET /api/jobs`: one page of jobs, newest first unless `order=asc`; `filter` and `sort` as
/// ListJobs' `filter` and `sort_by` (largest first unless `order=asc`).
pub async fn list(_: Authed, State(web): State<Web>, RawQuery(q): RawQuery) -> Result<Json<Value>, WebError> {
    let p = Params::parse(q.as_deref(), LIST_PARAMS)?;
    let states = p
        .list("state")
        .iter()
        .map(|s| {
            JobState::from_str(s).map(|st| convert::state_to_pb(st) as i32).map_err(|e| WebError::param("state", e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let verdict = match p.get("verdict") {
        Some(v) => convert::verdict_to_pb(Verdict::from_str(v).map_err(|e| WebError::param("verdict", e))?) as i32,
        None => 0,
    };
    let oldest_first = match p.get("order") {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(o) => return Err(WebError::param("order", format!("{o:?}: asc or desc"))),
    };
    let req = pb::ListJobsRequest {
        states,
        activation: p.get("activation").unwrap_or_default().to_string(),
        min_depth: p.num("min_depth")?,
        max_depth: p.num("max_depth")?,
        label: p.get("label").unwrap_or_default().to_string(),
        verdict,
        name_contains: p.get("name").unwrap_or_default().to_string(),
        sweep_id: p.num("sweep")?,
        oldest_first,
        page_size: p.num("page_size")?.unwrap_or(0),
        page_token: p.get("page_token").unwrap_or_default().to_string(),
        finished_before_ms: p.num("finished_before_ms")?,
        filter: p.get("filter").unwrap_or_default().to_string(),
        sort_by: p.get("sort").unwrap_or_default().to_string(),
        descending: !oldest_first,
    };
    let (filter, order, page) = convert::list_request(&req).map_err(|e| {
        renamed(e, &[("states", "state"), ("name_contains", "name"), ("sweep_id", "sweep"), ("sort_by", "sort")])
    })?;
    let (jobs, next) = web.runner.store().list_jobs(&filter, order, &page).await?;
    Ok(Json(json!({ "jobs": jobs, "next_page_token": next.unwrap_or_default() })))
}

/// `GET /api/jobs/{id}`.
pub async fn get(_: Authed, State(web): State<Web>, Path(id): Path<String>) -> Result<Json<Value>, WebError> {
    let id = JobId(parse_id(&id)?);
    let job =
        web.runner.store().get_job(id).await?.ok_or_else(|| WebError::from(crate::runner::StoreError::NotFound(id)))?;
    let mut job = json!(job);
    job["checkpoints"] = json!(web.runner.store().checkpoints(id).await?);
    Ok(Json(job))
}

/// `POST /api/jobs/{id}/cancel`.
pub async fn cancel(_: Authed, State(web): State<Web>, Path(id): Path<String>) -> Result<Json<Value>, WebError> {
    let job = web.runner.cancel(JobId(parse_id(&id)?)).await?;
    Ok(Json(json!(job)))
}

/// `DELETE /api/jobs/{id}?cancel=true`: the job and everything stored of it (as `DeleteJob`).
pub async fn delete(
    _: Authed,
    State(web): State<Web>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, WebError> {
    let id = parse_id(&id)?;
    let cancel = Params::parse(q.as_deref(), &["cancel"])?.num::<bool>("cancel")?.unwrap_or(false);
    web.runner.delete_jobs(&[JobId(id)], cancel).await?;
    Ok(Json(json!({ "deleted": id })))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    name: Option<String>,
    #[serde(default)]
    set_labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    remove_labels: Vec<String>,
}

/// `PATCH /api/jobs/{id}` `{"name", "set_labels", "remove_labels"}` (as `UpdateJob`).
pub async fn update(
    _: Authed,
    State(web): State<Web>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, WebError> {
    let id = JobId(parse_id(&id)?);
    let p: Patch = serde_json::from_slice(&body).map_err(|e| WebError::param("body", e))?;
    let update = JobUpdate { name: p.name, set_labels: p.set_labels, remove_labels: p.remove_labels };
    Ok(Json(json!(web.runner.update_job(id, &update).await?)))
}

const SERIES_PARAMS: &[&str] = &["metrics", "layers", "from", "to", "max_points"];

fn series_query(id: i64, q: Option<&str>) -> Result<HistoryQuery, WebError> {
    let p = Params::parse(q, SERIES_PARAMS)?;
    let req = pb::HistoryRequest {
        job_id: id,
        layers: p.nums("layers")?,
        metrics: p.list("metrics"),
        from_step: p.num("from")?,
        to_step: p.num("to")?,
        max_points: p.num("max_points")?.unwrap_or(0),
    };
    convert::history_query(&req).map_err(|e| renamed(e, &[("from_step", "from"), ("to_step", "to")]))
}

/// `GET /api/jobs/{id}/history`: series over a step range, min/max downsampled to
/// `max_points` buckets (as `GetHistory`).
pub async fn history(
    _: Authed,
    State(web): State<Web>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, WebError> {
    let id = parse_id(&id)?;
    let query = series_query(id, q.as_deref())?;
    let h = web.runner.store().history(JobId(id), &query).await?;
    let downsampled = query.max_points.is_some();
    Ok(Json(
        json!({ "job_id": id, "series": js::series(&h.series), "evals": js::evals(&h.evals), "downsampled": downsampled }),
    ))
}

/// `GET /api/jobs/{id}/histograms?layers=&from=&to=&max_steps=`: log10|dL/dW| histograms over
/// time (as `GetHistograms`). Bin i of `counts` covers [10^(log10_lo + i/per_decade),
/// 10^(log10_lo + (i+1)/per_decade)).
pub async fn histograms(
    _: Authed,
    State(web): State<Web>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, WebError> {
    let id = parse_id(&id)?;
    let p = Params::parse(q.as_deref(), &["layers", "from", "to", "max_steps"])?;
    let req = pb::HistogramsRequest {
        job_id: id,
        layers: p.nums("layers")?,
        from_step: p.num("from")?,
        to_step: p.num("to")?,
        max_steps: p.num("max_steps")?.unwrap_or(0),
    };
    let query = convert::histogram_query(&req).map_err(|e| renamed(e, &[("from_step", "from"), ("to_step", "to")]))?;
    let h = crate::runner::histograms::read(&**web.runner.store(), JobId(id), &query).await?;
    let layers: Vec<Value> = h
        .layers
        .iter()
        .map(|(l, hs)| {
            let hs: Vec<Value> = hs
                .iter()
                .map(|h| {
                    json!({ "counts": h.counts, "zeros": h.zeros, "underflow": h.underflow,
                            "overflow": h.overflow, "nonfinite": h.nonfinite })
                })
                .collect();
            json!({ "layer": l, "histograms": hs })
        })
        .collect();
    Ok(Json(json!({
        "job_id": id,
        "log10_lo": Histogram::LOG10_LO,
        "log10_hi": Histogram::LOG10_HI,
        "per_decade": Histogram::PER_DECADE,
        "steps": h.steps,
        "layers": layers,
    })))
}

/// Series events a live stream holds for its client before the job's stream waits.
const LIVE_BUFFER: usize = 16;

/// `GET /api/jobs/{id}/live`: server-sent events `job`, `points`, `evals`, then `end`.
pub async fn live(
    _: Authed,
    State(web): State<Web>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<impl IntoResponse, WebError> {
    let id = JobId(parse_id(&id)?);
    let query = series_query(id.0, q.as_deref())?;
    // Unknown jobs and bad queries fail the request, not its first event.
    live_series::check(&**web.runner.store(), id, &query).await?;
    let slot = web.runner.watch_slot()?;
    let (tx, rx) = mpsc::channel(LIVE_BUFFER);
    let runner = web.runner.clone();
    tokio::spawn(async move {
        let _slot = slot;
        runner.watch_series(id, query, tx).await
    });
    let events = ReceiverStream::new(rx).map(|item| match item {
        Ok(SeriesEvent::Job(job)) => sse::event("job", &*job),
        Ok(SeriesEvent::Points { done, partial }) => {
            sse::event("points", &json!({ "series": js::series(&done), "partial": js::series(&partial) }))
        }
        Ok(SeriesEvent::Evals(e)) => sse::event("evals", &js::evals(&e)),
        Err(e) => sse::error_event(e.into()),
    });
    Ok(sse::respond(events))
}

/// How often `/api/changes` looks at the running jobs' progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The running jobs' progress (any server's) that moved since `last`: (id, steps_done) as
/// JSON, and `last` updated to the running jobs only.
async fn progress(runner: &crate::runner::Runner, last: &mut HashMap<i64, u64>) -> Option<Value> {
    let running = JobFilter { states: vec![JobState::Running], ..Default::default() };
    let page = PageRequest { size: convert::MAX_PAGE_SIZE, token: None };
    let (jobs, _) = runner.store().list_jobs(&running, Order::NEWEST_FIRST, &page).await.ok()?;
    let moved: Vec<Value> = jobs
        .iter()
        .filter(|j| last.get(&j.id.0) != Some(&j.steps_done))
        .map(|j| json!({ "id": j.id, "steps_done": j.steps_done }))
        .collect();
    *last = jobs.iter().map(|j| (j.id.0, j.steps_done)).collect();
    (!moved.is_empty()).then_some(Value::Array(moved))
}

/// `GET /api/changes`: every job's state changes, from this server and the others sharing its
/// database (`job`); deletions (`deleted`, `{"id"}`); each second, the running jobs whose progress moved (`progress`,
/// `[{"id", "steps_done"}]`); `resync` when changes may have been missed (the reader fell
/// behind).
pub async fn changes(_: Authed, State(web): State<Web>) -> Result<impl IntoResponse, WebError> {
    let slot = web.runner.watch_slot()?;
    let mut changes = web.runner.subscribe_changes();
    let (tx, rx) = mpsc::channel::<Event>(LIVE_BUFFER);
    let runner = web.runner.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let stopping = runner.stopping();
        tokio::pin!(stopping);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = HashMap::new();
        loop {
            let ev = tokio::select! {
                ch = changes.recv() => match ch {
                    Ok(Change::State(job)) => sse::event("job", &*job),
                    Ok(Change::Progress(_)) => continue,
                    Ok(Change::Deleted(id)) => sse::event("deleted", &json!({ "id": id })),
                    Err(RecvError::Lagged(_)) => sse::event("resync", &json!({})),
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => match progress(&runner, &mut last).await {
                    Some(moved) => sse::event("progress", &moved),
                    None => continue,
                },
                _ = &mut stopping => return,
                _ = tx.closed() => return,
            };
            if tx.send(ev).await.is_err() {
                return;
            }
        }
    });
    Ok(sse::respond(ReceiverStream::new(rx)))
}
