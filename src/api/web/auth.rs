//! The dashboard's side of `--token`: every data and stream endpoint wants the token, as
//! `Authorization: Bearer <token>` (scripts) or as the HttpOnly, SameSite=Strict cookie that
//! `POST /api/login` sets once the page's user has typed it. Page assets carry no data and are
//! served to anyone, so the page can ask for the token.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::Web;
use super::error::WebError;

const COOKIE_NAME: &str = "gradlab_token";

#[derive(Clone, Default)]
pub struct WebAuth {
    token: Option<Arc<[u8]>>,
    /// Served over TLS: the cookie is marked Secure.
    tls: bool,
}

impl WebAuth {
    pub fn new(token: Option<&str>, tls: bool) -> Self {
        WebAuth { token: token.map(|t| Arc::from(t.as_bytes())), tls }
    }

    fn matches(&self, given: &[u8]) -> bool {
        // Constant time in the token's bytes, as for gRPC (a length difference still shows).
        self.token.as_ref().is_some_and(|t| bool::from(given.ct_eq(t)))
    }

    /// Whether a request carries the token (always, when the server has none).
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        if self.token.is_none() {
            return true;
        }
        let bearer = headers.get(AUTHORIZATION).and_then(|v| {
            let v = v.as_bytes();
            v.get(..7).filter(|s| s.eq_ignore_ascii_case(b"bearer ")).map(|_| v[7..].to_vec())
        });
        if bearer.is_some_and(|b| self.matches(&b)) {
            return true;
        }
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().strip_prefix(COOKIE_NAME)?.strip_prefix('='))
            .any(|v| {
                let decoded: Vec<u8> = form_urlencoded::parse(format!("t={v}").as_bytes())
                    .next()
                    .map(|(_, t)| t.into_owned().into_bytes())
                    .unwrap_or_default();
                self.matches(&decoded)
            })
    }

    fn cookie(&self, value: &str, max_age: Option<u32>) -> HeaderValue {
        let mut c = format!("{COOKIE_NAME}={value}; Path=/; HttpOnly; SameSite=Strict");
        if let Some(age) = max_age {
            c.push_str(&format!("; Max-Age={age}"));
        }
        if self.tls {
            c.push_str("; Secure");
        }
        HeaderValue::from_str(&c).expect("cookie of URL-encoded text")
    }
}

/// A request that passed the token check: data handlers take one.
pub struct Authed;

impl FromRequestParts<Web> for Authed {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Authed, WebError> {
        if web.auth.allows(&parts.headers) {
            Ok(Authed)
        } else {
            Err(WebError::unauthorized(
                "this server needs a token: sign in with it (or send Authorization: Bearer <token>)",
            ))
        }
    }
}

/// `GET /api/session`: whether a token is needed and whether this request has it.
pub async fn session(State(web): State<Web>, headers: HeaderMap) -> Json<serde_json::Value> {
    Json(json!({ "auth_required": web.auth.token.is_some(), "authenticated": web.auth.allows(&headers) }))
}

#[derive(Deserialize)]
pub struct Login {
    token: String,
}

/// `POST /api/login {"token"}`: sets the session cookie when the token is right.
pub async fn login(State(web): State<Web>, Json(body): Json<Login>) -> Response {
    if web.auth.token.is_none() {
        return StatusCode::NO_CONTENT.into_response();
    }
    if !web.auth.matches(body.token.as_bytes()) {
        return WebError::unauthorized("wrong token").into_response();
    }
    let value: String = form_urlencoded::byte_serialize(body.token.as_bytes()).collect();
    (StatusCode::NO_CONTENT, [(SET_COOKIE, web.auth.cookie(&value, None))]).into_response()
}

/// `POST /api/logout`: clears the session cookie.
pub async fn logout(State(web): State<Web>) -> Response {
    (StatusCode::NO_CONTENT, [(SET_COOKIE, web.auth.cookie("", Some(0)))]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_token_passes_as_bearer_or_cookie_and_nothing_else_does() {
        let auth = WebAuth::new(Some("s3cret+/="), false);
        assert!(!auth.allows(&headers(&[])));
        assert!(auth.allows(&headers(&[("authorization", "Bearer s3cret+/=")])));
        assert!(auth.allows(&headers(&[("authorization", "bearer s3cret+/=")])));
        assert!(!auth.allows(&headers(&[("authorization", "Bearer s3cret")])));
        assert!(!auth.allows(&headers(&[("authorization", "s3cret+/=")])));
        let enc: String = form_urlencoded::byte_serialize(b"s3cret+/=").collect();
        assert!(auth.allows(&headers(&[("cookie", &format!("a=b; gradlab_token={enc}"))])));
        assert!(!auth.allows(&headers(&[("cookie", "gradlab_token=wrong")])));
        assert!(!auth.allows(&headers(&[("cookie", "xgradlab_token=s3cret")])));
        assert!(WebAuth::new(None, false).allows(&headers(&[])));
        let c = WebAuth::new(Some("t"), true).cookie("t", None);
        assert_eq!(c.to_str().unwrap(), "gradlab_token=t; Path=/; HttpOnly; SameSite=Strict; Secure");
    }
}
