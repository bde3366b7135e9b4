//! Server-sent events: named events with JSON data, a keep-alive comment so that proxies and
//! browsers do not drop a quiet stream, and the end of a stream said in so many words (`end`),
//! since EventSource reconnects after a close it was not told about.

use std::convert::Infallible;

use axum::response::sse::{Event, KeepAlive, Sse};
use serde::Serialize;
use serde_json::json;
use tokio_stream::{Stream, StreamExt};

use super::error::WebError;

pub fn event(name: &str, data: &impl Serialize) -> Event {
    let text = serde_json::to_string(data).unwrap_or_else(|e| json!({ "error": e.to_string() }).to_string());
    Event::default().event(name).data(text)
}

pub fn error_event(e: WebError) -> Event {
    event("error", &json!({ "error": e.message }))
}

/// The response for a stream of events, closed by `end` when the stream runs out.
pub fn respond(
    events: impl Stream<Item = Event> + Send + 'static,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + Send + 'static> {
    let end = tokio_stream::once(event("end", &json!({})));
    Sse::new(events.chain(end).map(Ok)).keep_alive(KeepAlive::default())
}
