//! The client side: connecting to a server, and turning gRPC failures into one-line messages.

use std::fmt;

use anyhow::Result;
use clap::Args;
use tonic::transport::{Channel, Endpoint};

use crate::api::pb::experiments_client::ExperimentsClient;

#[derive(Args, Clone, Debug)]
pub struct ServerArgs {
    /// The gradlab server.
    #[arg(long, env = "GRADLAB_SERVER", default_value = "http://127.0.0.1:50051", global = true)]
    pub server: String,
}

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

/// The generated client as every command uses it.
pub type Client = ExperimentsClient<Channel>;

pub async fn connect(args: &ServerArgs) -> Result<Client> {
    let endpoint = Endpoint::from_shared(args.server.clone())
        .map_err(|e| CliError(format!("bad server address {:?}: {e}", args.server)))?
        .connect_timeout(std::time::Duration::from_secs(5));
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| CliError(format!("cannot reach the gradlab server at {}: {}", args.server, source_chain(&e))))?;
    Ok(ExperimentsClient::new(channel).max_decoding_message_size(256 << 20))
}

fn source_chain(e: &dyn std::error::Error) -> String {
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
