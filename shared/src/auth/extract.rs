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

/// A caller whose bearer token is valid (signature, expiry, issuer, audience) but whose account
/// has not been checked yet: not an [`AuthUser`]. A handler that takes it must have the account
/// checked ([`crate::catalog::body::cached_read`] does, with
/// [`crate::services::ServicesInner::check_account_prefetched`]) before it answers anything but an
/// error; it exists so that the account's cache entry can be read in the same Redis round trip as
/// the handler's own keys (the catalog reads, issue 13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UncheckedUser {
    pub(crate) claimed: AuthUser,
    pub(crate) token_version: i64,
}

impl UncheckedUser {
    /// The user id the token names (for the key of its account's state).
    pub fn claimed_id(&self) -> crate::ids::UserId {
        self.claimed.id
    }
}

/// The caller the bearer token names, its token verified, its account not checked.
async fn verified(services: &Services, parts: &Parts) -> Result<UncheckedUser, ApiError> {
    let token = bearer_token(parts)?;
    let keys = services.token_keys().await?;
    let claims = keys.verify(token).map_err(|e| match e {
        TokenError::Expired => ApiError::Unauthorized("token expired".into()),
        _ => ApiError::Unauthorized("invalid token".into()),
    })?;
    Ok(UncheckedUser { claimed: AuthUser { id: claims.sub, role: claims.role }, token_version: claims.ver })
}

impl<S> FromRequestParts<S> for UncheckedUser
where
    Services: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        verified(&Services::from_ref(state), parts).await
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    Services: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let services = Services::from_ref(state);
        let caller = verified(&services, parts).await?;
        // The account must still exist and be active, and the token of its current version.
        services.check_account(caller.claimed, caller.token_version).await
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
