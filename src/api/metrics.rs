//! Prometheus metrics: the recorder, the scrape endpoint (`gradlab serve --metrics-addr`) and a
//! tower layer that counts and times every RPC by method and status.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use metrics::{counter, describe_counter, describe_histogram, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tracing::warn;

pub const RPCS: &str = "gradlab_rpc_requests_total";
pub const RPC_SECONDS: &str = "gradlab_rpc_duration_seconds";

/// Latency buckets, seconds: RPCs range from sub-millisecond reads to submissions that read a
/// dataset.
const BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Installs the process-wide Prometheus recorder (once; later calls return the same handle).
pub fn install() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)?
        .install_recorder()?;
    describe_counter!(RPCS, "RPCs answered, by method and gRPC status.");
    describe_histogram!(RPC_SECONDS, metrics::Unit::Seconds, "Time to answer an RPC (to the response headers).");
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// Serves the metrics in the Prometheus text format on `listener` (any path) until `shutdown`.
pub async fn serve(listener: TcpListener, handle: PrometheusHandle, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "metrics endpoint: accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_req| {
                let body = handle.render();
                async move {
                    hyper::Response::builder()
                        .header("content-type", "text/plain; version=0.0.4")
                        .body(Full::new(Bytes::from(body)))
                }
            });
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                warn!(error = %e, "metrics endpoint: connection failed");
            }
        });
    }
}

/// Counts and times every RPC: `gradlab_rpc_requests_total{method, status}` and
/// `gradlab_rpc_duration_seconds{method}`. The status is the one a call opens with: an error
/// status, or OK for calls that answer (a stream's final status is not seen here). Unknown
/// methods are labelled "unknown", so a client cannot grow the label set.
#[derive(Clone, Copy, Debug, Default)]
pub struct RpcMetricsLayer;

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;
    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics { inner }
    }
}

#[derive(Clone, Debug)]
pub struct RpcMetrics<S> {
    inner: S,
}

fn status_name(code: Option<i32>) -> String {
    format!("{:?}", tonic::Code::from(code.unwrap_or(0)))
}

impl<S, B, R> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req.uri().path().to_string();
        let started = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            let code = match &res {
                Ok(r) => r.headers().get("grpc-status").and_then(|v| v.to_str().ok()?.parse().ok()),
                Err(_) => Some(tonic::Code::Unavailable as i32),
            };
            let method = if code == Some(tonic::Code::Unimplemented as i32) { "unknown".to_string() } else { method };
            counter!(RPCS, "method" => method.clone(), "status" => status_name(code)).increment(1);
            histogram!(RPC_SECONDS, "method" => method).record(started.elapsed().as_secs_f64());
            res
        })
    }
}
