//! The client side: connecting to a server, and turning gRPC failures into one-line messages.

use std::fmt;

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::api::auth::SendToken;
use crate::api::pb::experiments_client::ExperimentsClient;

/// How a client command reaches its server. Global: accepted before or after the subcommand
/// (`gradlab --server URL ls` and `gradlab ls --server URL`), as git, kubectl and docker do.
#[derive(Args, Clone, Debug)]
pub struct ServerArgs {
    /// The gradlab server: http://HOST:PORT, or https://HOST:PORT for TLS.
    #[arg(long, env = "GRADLAB_SERVER", default_value = "http://127.0.0.1:50051", global = true)]
    pub server: String,
    /// The server's token: clients send it as `authorization: Bearer <token>`; `gradlab serve`
    /// requires it of every call (except gRPC health).
    #[arg(long, env = "GRADLAB_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// PEM certificate(s) to trust for an https:// server (e.g. the CA `gradlab cert` wrote);
    /// default: the system's trusted roots.
    #[arg(long, env = "GRADLAB_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
}

impl ServerArgs {
    /// A plaintext loopback server with no token (the demo's own).
    pub fn local(addr: std::net::SocketAddr) -> ServerArgs {
        ServerArgs { server: format!("http://{addr}"), token: None, ca_cert: None }
    }
}

/// A client of the Experiments service that sends the token, if any, on every call.
pub type Client = ExperimentsClient<InterceptedService<Channel, SendToken>>;

/// A failure the CLI reports in one line and exits non-zero on.
#[derive(Debug)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

/// "NotFound: job 7 not found" rather than a debug dump of the status.
pub fn status(e: tonic::Status) -> anyhow::Error {
    CliError(format!("{:?}: {}", e.code(), e.message())).into()
}

pub async fn connect(args: &ServerArgs) -> Result<Client> {
    let token = SendToken::new(args.token.as_deref()).map_err(CliError)?;
    let mut endpoint = Endpoint::from_shared(args.server.clone())
        .map_err(|e| CliError(format!("bad server address {:?}: {e}", args.server)))?
        .connect_timeout(std::time::Duration::from_secs(5));
    let https = endpoint.uri().scheme_str() == Some("https");
    if https {
        let tls = match &args.ca_cert {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| CliError(format!("--ca-cert {}: {e}", path.display())))?;
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))
            }
            None => ClientTlsConfig::new().with_native_roots(),
        };
        endpoint = endpoint.tls_config(tls).map_err(|e| CliError(format!("TLS for {}: {e}", args.server)))?;
    } else if args.ca_cert.is_some() {
        return Err(CliError(format!("--ca-cert is for https:// servers, and {} is not one", args.server)).into());
    }
    let channel = endpoint.connect().await.map_err(|e| unreachable(&args.server, &e))?;
    Ok(ExperimentsClient::with_interceptor(channel, token).max_decoding_message_size(256 << 20))
}

/// Why a server could not be reached, in one line with what to do about it.
fn unreachable(server: &str, e: &dyn std::error::Error) -> CliError {
    let chain = source_chain(e);
    let hint = if chain.contains("CaUsedAsEndEntity") {
        // rustls refuses a certificate marked CA:TRUE as a server's own; `openssl req -x509`
        // marks them so unless told otherwise.
        " (the server's certificate is a CA certificate, which TLS clients refuse as a server's own: make it with \
         `-addext basicConstraints=critical,CA:FALSE`, or make a CA and a server certificate with `gradlab cert`)"
    } else if chain.contains("Connection refused") {
        " (is a server running there? Start one with `gradlab serve`, or point --server or GRADLAB_SERVER at one)"
    } else {
        ""
    };
    CliError(format!("cannot reach the gradlab server at {server}: {chain}{hint}"))
}

/// An error and its causes in one line, each said once.
pub fn source_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}
