//! `GET /docs`: the API's interactive documentation (Swagger UI on `/openapi.json`), and
//! `GET /docs/{file}` its assets. The assets are the pinned `swagger-ui-dist` of
//! `docs-ui/package-lock.json`, compiled into the binary (see build.rs): the page loads nothing
//! from anywhere but this API, which its Content-Security-Policy says too.

use axum::{
    extract::Path,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use shared::http::ApiError;

macro_rules! asset {
    ($file:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/docs-ui/node_modules/swagger-ui-dist/", $file))
    };
}

/// The files under `/docs/`, with their content type.
pub const ASSETS: &[(&str, &str, &[u8])] = &[
    ("swagger-ui-bundle.js", "text/javascript; charset=utf-8", asset!("swagger-ui-bundle.js")),
    ("swagger-ui.css", "text/css; charset=utf-8", asset!("swagger-ui.css")),
    ("favicon-32x32.png", "image/png", asset!("favicon-32x32.png")),
    ("docs.js", "text/javascript; charset=utf-8", include_bytes!("../docs-ui/docs.js")),
];

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>football-prediction API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/docs.js"></script>
</body>
</html>
"#;

/// Only this API: scripts and styles from `/docs/`, calls to the API itself (Swagger UI sets
/// inline styles, and draws some icons as `data:` images).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub async fn page() -> Response {
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}

pub async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    let (_, content_type, bytes) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| ApiError::NotFound(format!("no file {file} in /docs")))?;
    // The version is in the binary: a new deploy may change a file, so a day at most.
    Ok(([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "public, max-age=86400")], *bytes)
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_bundled_files() {
        for src in PAGE.split(['"']).filter(|s| s.starts_with('/') || s.starts_with("http")) {
            let file = src.strip_prefix("/docs/").unwrap_or_else(|| panic!("{src} is not a /docs/ asset"));
            assert!(ASSETS.iter().any(|(name, _, bytes)| *name == file && !bytes.is_empty()), "{file} not bundled");
        }
        let bundle = ASSETS.iter().find(|(n, _, _)| *n == "swagger-ui-bundle.js").unwrap().2;
        assert!(bundle.len() > 500_000, "the real Swagger UI bundle");
    }
}
