//! The refusal of an oversized request, in gRPC's terms.
//!
//! tonic enforces `max_decoding_message_size` itself but answers OUT_OF_RANGE, quoting its own
//! setting ("decoded message length too large"). gRPC's convention for a message over the
//! limit is RESOURCE_EXHAUSTED, and a person needs the server flag to ask for. This layer
//! rewrites that one status, which tonic sends before any handler runs, in the response
//! headers (a "trailers-only" response); every other response passes untouched.

use std::task::{Context, Poll};

use tonic::Status;
use tonic::codegen::http::{HeaderMap, Request, Response};
use tonic::codegen::{BoxFuture, Service};

use crate::runner::limits::thousands;

const TONIC_TOO_LARGE: &str = "Error, decoded message length too large: found ";

#[derive(Clone, Debug)]
pub struct RequestSizeLayer {
    limit: usize,
}

impl RequestSizeLayer {
    pub fn new(limit: usize) -> Self {
        RequestSizeLayer { limit }
    }
}

impl<S> tower_layer::Layer<S> for RequestSizeLayer {
    type Service = RequestSize<S>;

    fn layer(&self, inner: S) -> RequestSize<S> {
        RequestSize { inner, limit: self.limit }
    }
}

#[derive(Clone, Debug)]
pub struct RequestSize<S> {
    inner: S,
    limit: usize,
}

impl<S, B, R> Service<Request<B>> for RequestSize<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Response<R>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (future, limit) = (self.inner.call(request), self.limit);
        Box::pin(async move {
            let mut response = future.await?;
            rewrite(response.headers_mut(), limit);
            Ok(response)
        })
    }
}

fn rewrite(headers: &mut HeaderMap, limit: usize) {
    // Cheap test first: most responses carry no status in their headers.
    if headers.get("grpc-status").map(|v| v.as_bytes()) != Some(b"11") {
        return;
    }
    let Some(status) = Status::from_header_map(headers) else { return };
    let Some(rest) = status.message().strip_prefix(TONIC_TOO_LARGE) else { return };
    let found = rest.split_once(' ').and_then(|(n, _)| n.parse::<u64>().ok());
    let size = found.map_or_else(|| "larger".to_string(), |n| format!("{} bytes,", thousands(n)));
    let ours = Status::resource_exhausted(format!(
        "the request message is {size} more than this server's --max-request-bytes {}",
        thousands(limit as u64)
    ));
    // add_header only fails on a message that cannot be encoded; ours always can.
    let _ = ours.add_header(headers);
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn only_the_size_refusal_is_rewritten() {
        let mut headers = HeaderMap::new();
        let tonic_says =
            Status::out_of_range("Error, decoded message length too large: found 5000 bytes, the limit is: 1024 bytes");
        tonic_says.add_header(&mut headers).unwrap();
        rewrite(&mut headers, 1024);
        let s = Status::from_header_map(&headers).unwrap();
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert_eq!(
            s.message(),
            "the request message is 5,000 bytes, more than this server's --max-request-bytes 1,024"
        );

        let mut other = HeaderMap::new();
        Status::out_of_range("step 9 is past the end").add_header(&mut other).unwrap();
        rewrite(&mut other, 1024);
        assert_eq!(Status::from_header_map(&other).unwrap().code(), Code::OutOfRange);
        let mut ok = HeaderMap::new();
        rewrite(&mut ok, 1024);
        assert!(ok.is_empty());
    }
}
