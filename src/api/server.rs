//! Serving: the Experiments service with gRPC health and reflection (v1 and v1alpha), behind
//! the token check, TLS and the request limits.

use std::future::Future;

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use super::auth::RequireToken;
use super::metrics::RpcMetricsLayer;
use super::pb::{self, experiments_server::ExperimentsServer};
use super::request_size::RequestSizeLayer;
use super::service::ExperimentsService;
use super::web::{self, WebAuth};
use crate::runner::Runner;

/// How the server meets its clients; the default is plaintext and open, for loopback.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// Calls (except health) need `authorization: Bearer <token>`.
    pub token: Option<String>,
    /// TLS with this certificate chain and key (PEM).
    pub tls: Option<Identity>,
}

/// Serves on `listener` until `shutdown` resolves; then watch streams end (UNAVAILABLE) and
/// in-flight calls finish.
pub async fn serve(
    listener: TcpListener,
    runner: Runner,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let stopping = runner.clone();
    let shutdown = async move {
        shutdown.await;
        stopping.begin_shutdown();
    };
    let limits = runner.limits().clone();
    let auth = RequireToken::new(options.token.as_deref());
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<ExperimentsServer<ExperimentsService>>().await;
    // NOT_SERVING while the database cannot be reached (load balancers send calls elsewhere).
    let mut store_ok = runner.health();
    tokio::spawn(async move {
        while store_ok.changed().await.is_ok() {
            let ok = *store_ok.borrow_and_update();
            if ok {
                health_reporter.set_serving::<ExperimentsServer<ExperimentsService>>().await;
            } else {
                health_reporter.set_not_serving::<ExperimentsServer<ExperimentsService>>().await;
            }
        }
    });
    // Reflection describes the API and nothing else, but it is behind the token too: a server
    // that wants a token tells strangers nothing, and grpcurl can send the header (-H).
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let experiments = ExperimentsServer::new(ExperimentsService::new(runner.clone()))
        .max_decoding_message_size(limits.max_request_bytes);
    let dashboard = web::router(runner.clone(), WebAuth::new(options.token.as_deref(), options.tls.is_some()));
    let mut server = Server::builder();
    if let Some(identity) = options.tls {
        server = server.tls_config(ServerTlsConfig::new().identity(identity))?;
    }
    server
        // Browsers speak HTTP/1.1 to the dashboard on the same port (and HTTP/2 over TLS).
        .accept_http1(true)
        // A client's grpc-timeout shortens this; tonic applies the smaller of the two.
        .timeout(limits.request_timeout)
        // One span per RPC, named by its method: every log line of a call carries it.
        .trace_fn(|req| tracing::info_span!("grpc", method = %req.uri().path()))
        .layer(RpcMetricsLayer)
        .layer(RequestSizeLayer::new(limits.max_request_bytes))
        .add_routes(Routes::from(dashboard))
        .add_service(health)
        .add_service(InterceptedService::new(reflection_v1, auth.clone()))
        .add_service(InterceptedService::new(reflection_v1alpha, auth.clone()))
        .add_service(InterceptedService::new(experiments, auth))
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await?;
    Ok(())
}

/// The connections a server accepts, each with TCP_NODELAY set. A gRPC response is written in
/// several small segments (headers, data, trailers); with Nagle's algorithm on, the last one
/// waits for the client's delayed ACK, which costs grpcio clients about 40 ms a call. tonic sets
/// the option only on listeners it binds itself, never on an incoming stream it is handed.
pub fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true)).with_keepalive(Some(KEEPALIVE))
}

/// Idle time before TCP keepalive probes: a client that vanished without closing (power, a
/// dropped network) frees its watch stream within minutes, not hours.
const KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(60);
