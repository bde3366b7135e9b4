//! RPC latency on loopback, kept fixed without timing anything: every connection the server
//! accepts has TCP_NODELAY set. Without it a response's last small segment waits for the
//! client's delayed ACK (Nagle), about 40 ms a call from grpcio (issue 20).

use std::net::SocketAddr;
use std::os::fd::BorrowedFd;

use gradlab::api::pb;
use gradlab::api::server::ServeOptions;
use gradlab::runner::RunnerConfig;

use crate::common::TestServer;

/// This process's TCP sockets whose local address is `local` (the server side of connections
/// accepted on it, and the listener), with their TCP_NODELAY.
fn sockets_on(local: SocketAddr) -> Vec<(Option<SocketAddr>, bool)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let entry = entry.unwrap();
        let Ok(target) = std::fs::read_link(entry.path()) else { continue };
        if !target.to_string_lossy().starts_with("socket:") {
            continue;
        }
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        // SAFETY: the fd is open (just listed) and only borrowed for the two queries below; a
        // socket that closes in between makes them return an error, which is skipped.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&fd);
        let Some(addr) = sock.local_addr().ok().and_then(|a| a.as_socket()) else { continue };
        if addr != local {
            continue;
        }
        let peer = sock.peer_addr().ok().and_then(|a| a.as_socket());
        if let Ok(nodelay) = sock.tcp_nodelay() {
            found.push((peer, nodelay));
        }
    }
    found
}

async fn accepted_connections_set_nodelay(options: ServeOptions) {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(&dir.path().join("l.db"), RunnerConfig::with_workers(1), options).await;
    let mut client = server.client().await;
    // A unary call (refused: no such job, or no token), so the connection is surely accepted.
    let e = client.get_job(pb::JobId { id: 1 }).await.unwrap_err();
    assert!(matches!(e.code(), tonic::Code::NotFound | tonic::Code::Unauthenticated), "{e:?}");
    let accepted: Vec<bool> =
        sockets_on(server.addr).into_iter().filter(|(peer, _)| peer.is_some()).map(|(_, nodelay)| nodelay).collect();
    assert!(!accepted.is_empty(), "the server's side of the client's connection was not found");
    assert!(accepted.iter().all(|&n| n), "an accepted connection has Nagle's algorithm on: {accepted:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_connections_have_tcp_nodelay() {
    accepted_connections_set_nodelay(ServeOptions::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_connections_have_tcp_nodelay_with_a_token() {
    accepted_connections_set_nodelay(ServeOptions { token: Some("s3cret-token-for-latency".into()), tls: None }).await;
}
