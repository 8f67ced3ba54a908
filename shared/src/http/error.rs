//! The error type of the HTTP contract (DESIGN.md section 3) and its mapping to responses.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use super::request_id;

/// Every error an HTTP handler can answer with. The body is always
/// `{"error":{"code","message","request_id"}}`; a 500 carries no detail, and its cause is logged.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or a field is invalid; the message says which field.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: no token, a bad or expired token, or bad credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, but the role does not allow it.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such thing (also for another user's private object).
    #[error("{0}")]
    NotFound(String),
    /// 405
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: a conflict with existing data (a taken username).
    #[error("{0}")]
    Conflict(String),
    /// 413
    #[error("request body too large (limit {limit_bytes} bytes)")]
    PayloadTooLarge { limit_bytes: usize },
    /// 422: understood but refused (an idempotency key reused with another body).
    #[error("{0}")]
    Unprocessable(String),
    /// 429, with `Retry-After` in seconds.
    #[error("too many requests; retry after {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    /// 503: a dependency is not available now; with `Retry-After`. The cause is logged, the
    /// dependency named.
    #[error("{dependency} is unavailable")]
    Unavailable {
        dependency: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// 503: the service is read-only for maintenance (a feature flag); with `Retry-After`.
    #[error("the service is read-only for maintenance; retry later")]
    Maintenance { retry_after_secs: u64 },
    /// 500: a bug or an unexpected state. Logged with its cause; the client sees nothing of it.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// 400 naming the offending field.
    pub fn invalid_field(field: &str, problem: impl std::fmt::Display) -> Self {
        Self::BadRequest { code: "invalid_input", message: format!("{field}: {problem}") }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest { code: "bad_request", message: message.into() }
    }

    pub fn unavailable(dependency: &'static str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unavailable { dependency, source: source.into() }
    }

    /// 500, unless `source` is a database failure that means "not now" (a handler that wrapped
    /// one as internal still answers 503).
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let source = source.into();
        if source.downcast_ref::<sqlx::Error>().is_some_and(crate::db::is_unavailable) {
            return Self::Unavailable { dependency: "database", source };
        }
        Self::Internal(source)
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } | Self::Maintenance { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. } => code,
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Unprocessable(_) => "unprocessable",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::Unavailable { .. } => "service_unavailable",
            Self::Maintenance { .. } => "maintenance",
            Self::Internal(_) => "internal_error",
        }
    }
}

/// The JSON error body of every 4xx and 5xx (`ErrorResponse` in the OpenAPI document).
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = ErrorResponse)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = ErrorObject)]
pub struct ErrorDetail {
    /// snake_case: `invalid_input`, `bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `method_not_allowed`, `conflict`, `payload_too_large`, `unprocessable`, `too_many_requests`,
    /// `service_unavailable`, `maintenance`, `internal_error`.
    #[schema(example = "invalid_input")]
    pub code: String,
    /// For a person; for a 400 it names the field (`limit: must be between 1 and 100`).
    #[schema(example = "limit: must be between 1 and 100")]
    pub message: String,
    /// The `x-request-id` of the response, to quote when reporting a problem.
    pub request_id: String,
}

impl ErrorBody {
    /// The body `error` answers with (the request id of the current request, if any).
    pub fn of(error: &ApiError) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: error.code().to_string(),
                message: error.to_string(),
                request_id: request_id::current().unwrap_or_default(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Self::Internal(cause) => tracing::error!(error = %cause, debug = ?cause, "internal error"),
            Self::Unavailable { dependency, source } => {
                tracing::error!(dependency, error = %source, "dependency unavailable");
                if *dependency == "database" {
                    crate::metrics::dependency_error("database");
                }
            }
            _ => tracing::debug!(status = status.as_u16(), error = %self, "request refused"),
        }
        let body = ErrorBody::of(&self);
        let mut response = (status, Json(body)).into_response();
        let retry_after = match self {
            Self::TooManyRequests { retry_after_secs } => Some(retry_after_secs.max(1)),
            Self::Unavailable { .. } => Some(UNAVAILABLE_RETRY_AFTER_SECS),
            Self::Maintenance { retry_after_secs } => Some(retry_after_secs.max(1)),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The `Retry-After` of a 503, in seconds: long enough for a pool to reconnect, a statement timeout
/// to pass or RDS Proxy to reach the new writer, short enough that a client retries before a person
/// would. (A failover behind RDS Proxy takes seconds; `docs/operations.md` has the drill's figures.)
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

/// One classification with the jobs: [`crate::db::is_unavailable`] -> 503, anything else -> 500.
impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&error) {
            Self::unavailable("database", error)
        } else {
            Self::Internal(Box::new(error))
        }
    }
}

impl From<crate::db::DatabaseError> for ApiError {
    fn from(error: crate::db::DatabaseError) -> Self {
        if error.is_unavailable() { Self::unavailable("database", error) } else { Self::Internal(Box::new(error)) }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::db::tests::server;

    fn respond(e: ApiError) -> Response {
        e.into_response()
    }

    #[test]
    fn not_available_now_is_a_503_with_retry_after_for_every_class() {
        for code in ["08006", "53300", "57P01", "57P02", "57P03", "57014", "40001", "40P01", "25006"] {
            let res = respond(ApiError::from(server(code)));
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{code}");
            assert_eq!(res.headers()[header::RETRY_AFTER], UNAVAILABLE_RETRY_AFTER_SECS.to_string(), "{code}");
        }
        for e in [sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed, sqlx::Error::Tls("x".into())] {
            assert_eq!(respond(ApiError::from(e)).status(), StatusCode::SERVICE_UNAVAILABLE);
        }
    }

    #[test]
    fn a_bug_stays_an_opaque_500_without_retry_after() {
        for e in [server("23505"), server("42P01"), sqlx::Error::RowNotFound] {
            let res = respond(ApiError::from(e));
            assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert!(res.headers().get(header::RETRY_AFTER).is_none());
        }
    }

    #[test]
    fn a_database_outage_wrapped_as_internal_still_answers_503() {
        assert_eq!(ApiError::internal(server("57P01")).status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ApiError::internal(server("23505")).status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(ApiError::internal("a bug").status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn every_unavailable_dependency_gets_retry_after() {
        let res = respond(ApiError::unavailable("dynamodb", "timed out"));
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "2");
    }
}
