//! Serving: the Experiments service with gRPC health and reflection (v1 and v1alpha).

use std::future::Future;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;

use super::metrics::RpcMetricsLayer;
use super::pb::{self, experiments_server::ExperimentsServer};
use super::service::ExperimentsService;
use crate::runner::Runner;

/// Serves on `listener` until `shutdown` resolves; then watch streams end (UNAVAILABLE) and
/// in-flight calls finish.
pub async fn serve(
    listener: TcpListener,
    runner: Runner,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let stopping = runner.clone();
    let shutdown = async move {
        shutdown.await;
        stopping.begin_shutdown();
    };
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<ExperimentsServer<ExperimentsService>>().await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    Server::builder()
        // One span per RPC, named by its method: every log line of a call carries it.
        .trace_fn(|req| tracing::info_span!("grpc", method = %req.uri().path()))
        .layer(RpcMetricsLayer)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(ExperimentsServer::new(ExperimentsService::new(runner)))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}
