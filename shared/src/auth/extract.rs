//! Authorization as extractors: a handler that takes `AuthUser` answers 401 without a valid bearer
//! token; one that takes `AdminUser` also answers 403 for a non-admin. Never a panic on a
//! malformed header.

use axum::{
    extract::{FromRef, FromRequestParts},
    http::{header, request::Parts},
};

use super::token::{Role, TokenError};
use crate::{http::ApiError, ids::UserId, services::Services};

/// The authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    pub id: UserId,
    pub role: Role,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// The authenticated caller, who is an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminUser(pub AuthUser);

/// The bearer token of the `Authorization` header.
pub fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
    let value = value.to_str().map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
    let (scheme, token) =
        value.split_once(' ').ok_or_else(|| ApiError::Unauthorized("malformed Authorization header".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthorized("expected `Authorization: Bearer <token>`".into()));
    }
    Ok(token.trim())
}

impl<S> FromRequestParts<S> for AuthUser
where
    Services: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let services = Services::from_ref(state);
        let token = bearer_token(parts)?;
        let keys = services.token_keys().await?;
        let claims = keys.verify(token).map_err(|e| match e {
            TokenError::Expired => ApiError::Unauthorized("token expired".into()),
            _ => ApiError::Unauthorized("invalid token".into()),
        })?;
        let user = AuthUser { id: claims.sub, role: claims.role };
        // The account must still exist and be active, and the token of its current version.
        services.check_account(user, claims.ver).await
    }
}

impl<S> FromRequestParts<S> for AdminUser
where
    Services: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if user.is_admin() { Ok(AdminUser(user)) } else { Err(ApiError::Forbidden("admin role required".into())) }
    }
}
