//! Bearer tokens: the server's check (`gradlab serve --token`) and the client's sender.
//!
//! Both are tonic interceptors. The server wraps every service in [`RequireToken`] except gRPC
//! health, which load balancers and orchestrators probe without credentials.

use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

const SCHEME: &[u8] = b"bearer ";

/// A token is sent as an HTTP/2 header value: printable ASCII, no spaces.
pub fn check_token(token: &str) -> Result<(), String> {
    if token.is_empty() {
        return Err("--token (GRADLAB_TOKEN): must not be empty".into());
    }
    if let Some(c) = token.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!("--token (GRADLAB_TOKEN): must be printable ASCII without spaces, found {c:?}"));
    }
    Ok(())
}

/// The server side: lets a call through only with `authorization: Bearer <token>`.
#[derive(Clone)]
pub struct RequireToken {
    /// `None`: no token configured, every call passes.
    token: Option<Arc<[u8]>>,
}

impl RequireToken {
    pub fn new(token: Option<&str>) -> Self {
        RequireToken { token: token.map(|t| Arc::from(t.as_bytes())) }
    }
}

impl Interceptor for RequireToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(token) = &self.token else { return Ok(request) };
        let Some(value) = request.metadata().get("authorization") else {
            return Err(Status::unauthenticated(
                "this server needs a token: send the metadata `authorization: Bearer <token>` \
                 (gradlab clients: --token or GRADLAB_TOKEN)",
            ));
        };
        let value = value.as_bytes();
        // The scheme name is case-insensitive (RFC 6750); only the token needs constant time.
        let given = match value.get(..SCHEME.len()) {
            Some(scheme) if scheme.eq_ignore_ascii_case(SCHEME) => &value[SCHEME.len()..],
            _ => return Err(Status::unauthenticated("the authorization metadata must be `Bearer <token>`")),
        };
        // Compares every byte whatever the first difference is, so the time taken does not say
        // how much of a guess was right (a length difference still shows).
        if bool::from(given.ct_eq(token)) { Ok(request) } else { Err(Status::unauthenticated("wrong token")) }
    }
}

/// The client side: adds `authorization: Bearer <token>` to every call when a token is set.
#[derive(Clone, Debug, Default)]
pub struct SendToken {
    header: Option<AsciiMetadataValue>,
}

impl SendToken {
    pub fn new(token: Option<&str>) -> Result<Self, String> {
        let header = token
            .map(|t| {
                check_token(t)?;
                MetadataValue::try_from(format!("Bearer {t}")).map_err(|e| format!("--token (GRADLAB_TOKEN): {e}"))
            })
            .transpose()?;
        Ok(SendToken { header })
    }
}

impl Interceptor for SendToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(h) = &self.header {
            request.metadata_mut().insert("authorization", h.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    fn with(header: Option<&str>) -> Request<()> {
        let mut r = Request::new(());
        if let Some(h) = header {
            r.metadata_mut().insert("authorization", h.parse().unwrap());
        }
        r
    }

    #[test]
    fn only_the_right_bearer_token_passes() {
        let mut check = RequireToken::new(Some("s3cret"));
        assert!(check.call(with(Some("Bearer s3cret"))).is_ok());
        assert!(check.call(with(Some("bearer s3cret"))).is_ok());
        for bad in [None, Some("Bearer s3cre"), Some("Bearer s3cret2"), Some("s3cret"), Some("Basic s3cret")] {
            let e = check.call(with(bad)).unwrap_err();
            assert_eq!(e.code(), Code::Unauthenticated, "{bad:?}");
        }
        assert!(RequireToken::new(None).call(with(None)).is_ok(), "no token configured: open");
    }

    #[test]
    fn the_client_sends_what_the_server_wants() {
        let sent = SendToken::new(Some("s3cret")).unwrap().call(Request::new(())).unwrap();
        assert!(RequireToken::new(Some("s3cret")).call(sent).is_ok());
        assert!(SendToken::new(Some("has space")).unwrap_err().contains("printable ASCII"));
        assert!(SendToken::new(Some("")).is_err());
        assert!(SendToken::new(None).unwrap().call(Request::new(())).unwrap().metadata().is_empty());
    }
}
