//! The page's files, embedded in the binary (`web/static`, listed by build.rs): a user installs
//! nothing and the page fetches nothing from elsewhere. Each answer carries an ETag, so a
//! browser revalidates (`no-cache`) and gets a 304 until the binary changes.
//!
//! `GRADLAB_WEB_DIR=web/static` serves the files from that directory instead, read at each
//! request: for working on the page without rebuilding the binary.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::WebError;

static FILES: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// Scripts and styles from this server only, no inline script, no framing: text that gets
/// into the page by mistake still cannot run.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// FNV-1a of the file's bytes: changes when the file does.
fn etag(bytes: &[u8]) -> String {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("\"{h:016x}\"")
}

fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| FILES.iter().map(|(_, b)| etag(b)).collect())
}

/// The file at `path` under `GRADLAB_WEB_DIR`, if that is set: None when unset, Some(None)
/// when set and there is no such file (or the path leaves the directory).
fn from_dir(path: &str) -> Option<Option<Vec<u8>>> {
    let dir = std::env::var_os("GRADLAB_WEB_DIR")?;
    let inside = std::path::Path::new(path).components().all(|c| matches!(c, std::path::Component::Normal(_)));
    Some(inside.then(|| std::fs::read(std::path::Path::new(&dir).join(path)).ok()).flatten())
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let not_found = || WebError::new(StatusCode::NOT_FOUND, format!("no file {path:?}")).into_response();
    let (bytes, tag): (Vec<u8>, String) = match from_dir(path) {
        Some(Some(b)) => {
            let t = etag(&b);
            (b, t)
        }
        Some(None) => return not_found(),
        None => match FILES.iter().position(|(p, _)| *p == path) {
            Some(i) => (FILES[i].1.to_vec(), etags()[i].clone()),
            None => return not_found(),
        },
    };
    let fresh =
        headers.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut res = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { bytes.into_response() };
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(ETAG, HeaderValue::from_str(&tag).expect("hex etag"));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    res
}

/// Every page of the dashboard is the one app page; it routes on its own URL.
pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /static/{*path}`.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_embedded_and_revalidates_by_etag() {
        assert!(FILES.iter().any(|(p, _)| *p == "index.html"), "web/static/index.html is not embedded");
        let res = serve("index.html", &HeaderMap::new());
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        let tag = res.headers()[ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(IF_NONE_MATCH, tag);
        assert_eq!(serve("index.html", &again).status(), StatusCode::NOT_MODIFIED);
        assert_eq!(serve("../Cargo.toml", &HeaderMap::new()).status(), StatusCode::NOT_FOUND);
    }
}
