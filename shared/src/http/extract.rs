//! Extractors that answer bad input with a 400 naming what was wrong (or 413 for a body too large),
//! in the contract's error shape, instead of axum's plain-text rejections.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Query, Request, rejection::BytesRejection},
    http::request::Parts,
};
use serde::de::DeserializeOwned;

use super::{BODY_LIMIT_BYTES, error::ApiError};

/// A JSON body. Missing, empty, non-JSON, wrongly typed or with a missing field: 400 naming the
/// field (`username: missing field` style). Too large: 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| match e {
            BytesRejection::FailedToBufferBody(inner) if is_length_limit(&inner) => {
                ApiError::PayloadTooLarge { limit_bytes: BODY_LIMIT_BYTES }
            }
            other => ApiError::bad_request(format!("could not read the request body: {}", other.body_text())),
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

fn is_length_limit(err: &axum::extract::rejection::FailedToBufferBody) -> bool {
    matches!(err, axum::extract::rejection::FailedToBufferBody::LengthLimitError(_))
}

/// Parses a JSON body with errors that name the field and the problem.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest {
            code: "invalid_body",
            message: "the request body is empty; a JSON object is expected".into(),
        });
    }
    if contains_nul_escape(bytes) {
        // JSON can carry a NUL only as `\u0000`; PostgreSQL cannot take one in `text`. Name the
        // field it is in.
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes)
            && let Some(path) = nul_path(&value, String::new())
        {
            let field = if path.is_empty() { "body".to_string() } else { path };
            return Err(ApiError::invalid_field(&field, "must not contain a NUL character"));
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => not_json(&inner),
            _ => {
                let problem = strip_position(&inner.to_string());
                if path == "." || path.is_empty() {
                    // A missing field is reported at its parent; serde's message names it.
                    ApiError::BadRequest { code: "invalid_input", message: problem }
                } else {
                    ApiError::invalid_field(&path, problem)
                }
            }
        }
    })?;
    de.end().map_err(|e| not_json(&e))?;
    Ok(value)
}

fn contains_nul_escape(bytes: &[u8]) -> bool {
    bytes.windows(6).any(|w| w[0] == b'\\' && w[1] == b'u' && &w[2..] == b"0000")
}

/// The path (`a.b[2]`) of the first string or key holding a NUL character.
fn nul_path(value: &serde_json::Value, at: String) -> Option<String> {
    let join = |key: &str| if at.is_empty() { key.to_string() } else { format!("{at}.{key}") };
    match value {
        serde_json::Value::String(s) if s.contains('\0') => Some(at),
        serde_json::Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, v)| nul_path(v, format!("{at}[{i}]")))
        }
        serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k.contains('\0') { Some(join(&k.replace('\0', "\\u0000"))) } else { nul_path(v, join(k)) }
        }),
        _ => None,
    }
}

fn not_json(e: &serde_json::Error) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_body",
        message: format!("the request body is not valid JSON (line {}, column {})", e.line(), e.column()),
    }
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Query parameters; a malformed one is a 400 naming it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(query) = parts.uri.query() {
            for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
                if name.contains('\0') || value.contains('\0') {
                    return Err(ApiError::invalid_field(
                        &name.replace('\0', "%00"),
                        "must not contain a NUL character",
                    ));
                }
            }
        }
        Query::<T>::from_request_parts(parts, state).await.map(|Query(v)| ApiQuery(v)).map_err(|e| {
            ApiError::BadRequest {
                code: "invalid_query",
                message: e.body_text().replace("Failed to deserialize query string: ", "query: "),
            }
        })
    }
}

/// Path parameters; a malformed one is a 400 (an unknown id is the handler's 404).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| ApiError::BadRequest { code: "invalid_path", message: e.body_text() })
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Login {
        username: String,
        password: String,
        remember: Option<bool>,
    }

    fn message(body: &str) -> String {
        match parse_json::<Login>(body.as_bytes()) {
            Err(ApiError::BadRequest { message, .. }) => message,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn names_a_missing_field() {
        assert!(message(r#"{"username":"ann"}"#).contains("password"));
    }

    #[test]
    fn names_a_field_of_the_wrong_type() {
        let m = message(r#"{"username":"ann","password":"x","remember":"yes"}"#);
        assert!(m.starts_with("remember:"), "{m}");
    }

    #[test]
    fn a_nul_character_is_a_400_naming_its_field() {
        assert_eq!(message(r#"{"username":"a\u0000b","password":"x"}"#), "username: must not contain a NUL character");
        assert!(message(r#"{"username":"ann","password":"x","extra":[1,"\u0000"]}"#).starts_with("extra[1]:"));
        // An escaped backslash followed by `u0000` is not a NUL.
        assert!(parse_json::<Login>(br#"{"username":"a\\u0000","password":"x"}"#).is_ok());
    }

    #[test]
    fn says_when_the_body_is_not_json_or_empty() {
        assert!(message("username=ann").contains("not valid JSON"));
        assert!(message("").contains("empty"));
        assert!(message(r#"{"username":"ann","password":"x"} trailing"#).contains("not valid JSON"));
    }
}
