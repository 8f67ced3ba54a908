//! Users and refresh tokens: the account store.
//!
//! Accounts (`users`): registration with validated input, lookups, the admin's cursor-paginated list
//! and role / active changes. Refresh tokens (`refresh_tokens`): opaque random strings stored only
//! as their SHA-256, grouped in families (one login = one family); see [`crate::auth::session`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};

use crate::{auth::Role, http::ApiError, ids::UserId};

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
pub const PASSWORD_MIN: usize = 10;
pub const PASSWORD_MAX: usize = 128;
pub const EMAIL_MAX: usize = 254;
/// The longest page of the admin's user list.
pub const LIST_LIMIT_MAX: i64 = 100;
pub const LIST_LIMIT_DEFAULT: i64 = 50;

/// An account as the API shows it (never with its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// Public id, `user_<n>`.
    #[schema(value_type = String, example = "user_7")]
    pub id: UserId,
    #[schema(example = "ann_99")]
    pub username: String,
    #[schema(example = "ann@example.com")]
    pub email: Option<String>,
    pub role: Role,
    /// A deactivated account cannot log in, and its tokens stop working at the next request.
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    /// Null until the first login.
    pub last_login_at: Option<DateTime<Utc>>,
}

/// A row of `users` as the queries of this module select it (the column list is spelled out in each
/// query: the compile-time checked macros take only a string literal).
struct UserRow {
    id: i64,
    username: String,
    email: Option<String>,
    role: String,
    is_active: bool,
    created_at: DateTime<Utc>,
    last_login_at: Option<DateTime<Utc>>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: UserId(r.id),
            username: r.username,
            email: r.email,
            role: Role::parse(&r.role).unwrap_or(Role::User),
            is_active: r.is_active,
            created_at: r.created_at,
            last_login_at: r.last_login_at,
        }
    }
}

/// The stored credentials of an account, for login only.
pub struct Credentials {
    pub id: UserId,
    pub role: Role,
    pub is_active: bool,
    pub password_hash: String,
    /// The version its access tokens carry ([`crate::auth::Claims::ver`]).
    pub token_version: i64,
}

// ----- validation -------------------------------------------------------------------------------

/// `username`: 3 to 32 of `a-z 0-9 _`.
pub fn validate_username(field: &str, username: &str) -> Result<(), ApiError> {
    let len = username.chars().count();
    if len < USERNAME_MIN {
        return Err(ApiError::invalid_field(field, format!("at least {USERNAME_MIN} characters")));
    }
    if len > USERNAME_MAX {
        return Err(ApiError::invalid_field(field, format!("at most {USERNAME_MAX} characters")));
    }
    if !username.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(ApiError::invalid_field(field, "only lowercase letters a-z, digits and `_` are allowed"));
    }
    Ok(())
}

/// `password`: 10 to 128 characters, not the username.
pub fn validate_password(field: &str, password: &str, username: &str) -> Result<(), ApiError> {
    let len = password.chars().count();
    if len < PASSWORD_MIN {
        return Err(ApiError::invalid_field(field, format!("at least {PASSWORD_MIN} characters")));
    }
    if len > PASSWORD_MAX {
        return Err(ApiError::invalid_field(field, format!("at most {PASSWORD_MAX} characters")));
    }
    if password.trim().eq_ignore_ascii_case(username) {
        return Err(ApiError::invalid_field(field, "must not be the username"));
    }
    Ok(())
}

/// `email`: at most 254 characters, `local@domain`, no whitespace.
pub fn validate_email(field: &str, email: &str) -> Result<(), ApiError> {
    if email.chars().count() > EMAIL_MAX {
        return Err(ApiError::invalid_field(field, format!("at most {EMAIL_MAX} characters")));
    }
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if valid { Ok(()) } else { Err(ApiError::invalid_field(field, "not an email address")) }
}

// ----- the store --------------------------------------------------------------------------------

/// Creates an account with an already computed argon2id hash; `None` when the username is taken.
#[tracing::instrument(name = "db.create_user", skip_all)]
pub async fn create(
    pool: &PgPool,
    username: &str,
    email: Option<&str>,
    password_hash: &str,
    role: Role,
) -> Result<Option<User>, ApiError> {
    let row = sqlx::query_as!(
        UserRow,
        "INSERT INTO users (username, email, password_hash, role) VALUES ($1, $2, $3, $4)
         ON CONFLICT (username) DO NOTHING RETURNING id, username, email, role, is_active, created_at, last_login_at",
        username,
        email,
        password_hash,
        role.as_str(),
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(User::from))
}

#[tracing::instrument(name = "db.get_user", skip_all, fields(user_id = %id))]
pub async fn get(pool: &PgPool, id: UserId) -> Result<Option<User>, ApiError> {
    let row = sqlx::query_as!(
        UserRow,
        "SELECT id, username, email, role, is_active, created_at, last_login_at FROM users WHERE id = $1",
        id.0
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(User::from))
}

#[tracing::instrument(name = "db.get_user_by_username", skip_all)]
pub async fn get_by_username(pool: &PgPool, username: &str) -> Result<Option<User>, ApiError> {
    let row = sqlx::query_as!(
        UserRow,
        "SELECT id, username, email, role, is_active, created_at, last_login_at FROM users WHERE username = $1",
        username
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(User::from))
}

/// The credentials of `username`, if such an account exists.
#[tracing::instrument(name = "db.credentials", skip_all)]
pub async fn credentials(pool: &PgPool, username: &str) -> Result<Option<Credentials>, ApiError> {
    let row = sqlx::query!(
        "SELECT id, role, is_active, password_hash, token_version FROM users WHERE username = $1",
        username
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| Credentials {
        id: UserId(r.id),
        role: Role::parse(&r.role).unwrap_or(Role::User),
        is_active: r.is_active,
        password_hash: r.password_hash,
        token_version: r.token_version,
    }))
}

pub async fn record_login(pool: &PgPool, id: UserId) -> Result<(), ApiError> {
    sqlx::query!("UPDATE users SET last_login_at = now() WHERE id = $1", id.0).execute(pool).await?;
    Ok(())
}

/// The raw query of `GET /api/admin/users`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// Page size, 1 to 100, default 50.
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (`user_<n>`).
    #[param(pattern = r"^user_[1-9][0-9]{0,17}$", nullable = false)]
    pub cursor: Option<String>,
}

impl UsersQuery {
    /// The page size and the cursor, or a 400 naming `limit` or `cursor`.
    pub fn validate(&self) -> Result<(i64, Option<UserId>), ApiError> {
        let limit = self.limit.unwrap_or(LIST_LIMIT_DEFAULT);
        if !(1..=LIST_LIMIT_MAX).contains(&limit) {
            return Err(ApiError::invalid_field("limit", format!("must be between 1 and {LIST_LIMIT_MAX}")));
        }
        let after =
            self.cursor.as_deref().map(UserId::parse).transpose().map_err(|e| ApiError::invalid_field("cursor", e))?;
        Ok((limit, after))
    }
}

/// One page of the admin's list, in id order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<User>,
    /// Give it back as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Users after `after` (exclusive), at most `limit` (1..=100).
#[tracing::instrument(name = "db.list_users", skip_all)]
pub async fn list(pool: &PgPool, after: Option<UserId>, limit: i64) -> Result<UserPage, ApiError> {
    let limit = limit.clamp(1, LIST_LIMIT_MAX);
    let rows = sqlx::query_as!(
        UserRow,
        "SELECT id, username, email, role, is_active, created_at, last_login_at FROM users
         WHERE id > $1 ORDER BY id LIMIT $2",
        after.map_or(0, |a| a.0),
        limit + 1
    )
    .fetch_all(pool)
    .await?;
    let more = rows.len() as i64 > limit;
    let items: Vec<User> = rows.into_iter().take(limit as usize).map(User::from).collect();
    let next_cursor = if more { items.last().map(|u| u.id.to_string()) } else { None };
    Ok(UserPage { items, next_cursor })
}

/// What an admin may change about an account: the body of `PATCH /api/admin/users/{id}` (at
/// least one of the two).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UserChange {
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub role: Option<Role>,
    /// `false` deactivates the account and revokes its refresh tokens.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub is_active: Option<bool>,
}

/// A field that may be left out but, when given, is a value: `null` is refused, as the schema says.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

impl UserChange {
    /// A 400 when the body changes nothing.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.role.is_none() && self.is_active.is_none() {
            return Err(ApiError::bad_request("nothing to change: give `role` and/or `is_active`"));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("no such user")]
    NotFound,
    #[error("the last active admin cannot be demoted or deactivated")]
    LastAdmin,
    #[error("an admin cannot demote or deactivate their own account")]
    OwnAccount,
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<sqlx::Error> for ChangeError {
    fn from(e: sqlx::Error) -> Self {
        ChangeError::Api(e.into())
    }
}

impl From<ChangeError> for ApiError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::NotFound => ApiError::NotFound("no such user".into()),
            ChangeError::LastAdmin | ChangeError::OwnAccount => ApiError::Conflict(e.to_string()),
            ChangeError::Api(api) => api,
        }
    }
}

/// Changes role and/or active flag. Deactivating revokes every refresh token of the account and
/// bumps its token version (its access tokens fail at the next request). The caller publishes the
/// new state to the cache after this returns ([`crate::Services::publish_account_state`]). The last
/// active admin can be neither demoted nor deactivated, so the system never locks its admins out;
/// nor can an admin (`by`) demote or deactivate their own account: another admin must do it.
#[tracing::instrument(name = "db.update_user", skip_all, fields(user_id = %id))]
pub async fn update(pool: &PgPool, by: UserId, id: UserId, change: UserChange) -> Result<User, ChangeError> {
    if id == by && (change.role == Some(Role::User) || change.is_active == Some(false)) {
        return Err(ChangeError::OwnAccount);
    }
    let mut tx = pool.begin().await?;
    let current = sqlx::query!("SELECT role, is_active FROM users WHERE id = $1 FOR UPDATE", id.0)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| (r.role, r.is_active));
    let (role, active) = current.ok_or(ChangeError::NotFound)?;
    let was_admin = role == Role::Admin.as_str() && active;
    let new_role = change.role.map_or(role.clone(), |r| r.as_str().to_string());
    let new_active = change.is_active.unwrap_or(active);
    let stays_admin = new_role == Role::Admin.as_str() && new_active;
    if was_admin && !stays_admin {
        // Lock the other admins' rows so two concurrent demotions cannot both pass.
        let others: Vec<i64> = sqlx::query_scalar!(
            "SELECT id FROM users WHERE role = 'admin' AND is_active AND id <> $1 FOR UPDATE",
            id.0
        )
        .fetch_all(&mut *tx)
        .await?;
        if others.is_empty() {
            return Err(ChangeError::LastAdmin);
        }
    }
    let row = sqlx::query_as!(
        UserRow,
        "UPDATE users SET role = $2, is_active = $3, updated_at = now() WHERE id = $1
         RETURNING id, username, email, role, is_active, created_at, last_login_at",
        id.0,
        new_role,
        new_active
    )
    .fetch_one(&mut *tx)
    .await?;
    if !new_active {
        sqlx::query!("UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL", id.0)
            .execute(&mut *tx)
            .await?;
        crate::auth::session::bump_token_version(&mut tx, id).await?;
    }
    tx.commit().await?;
    Ok(row.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(validate_username("username", "ann_99").is_ok());
        for bad in ["ab", "Ann", "ann-b", "ann b", &"a".repeat(33), "añn"] {
            let err = validate_username("username", bad).unwrap_err().to_string();
            assert!(err.starts_with("username:"), "{bad}: {err}");
        }
    }

    #[test]
    fn passwords() {
        assert!(validate_password("password", "long enough pass", "ann").is_ok());
        assert!(validate_password("password", "short", "ann").is_err());
        assert!(validate_password("password", &"x".repeat(129), "ann").is_err());
        assert!(validate_password("password", &"x".repeat(128), "ann").is_ok());
        assert!(validate_password("password", "ann_the_user", "ann_the_user").is_err());
    }

    #[test]
    fn emails() {
        assert!(validate_email("email", "ann@example.com").is_ok());
        for bad in ["ann", "@example.com", "ann@example", "ann@.com", "a nn@example.com", "a@b@c.com"] {
            assert!(validate_email("email", bad).is_err(), "{bad}");
        }
    }
}
