//! Sessions: registration, login (argon2id, throttled), refresh-token rotation with reuse
//! detection, and logout. The `auth` function's handlers are thin calls into this module.
//!
//! Refresh tokens are 32 random bytes, base64url (43 characters), stored only as their SHA-256.
//! A login starts a family; every refresh marks the presented token rotated and issues the next
//! one in the same family. Presenting a rotated token again means it was copied: the whole family
//! is revoked (the thief's and the owner's sessions both end) and the answer is 401.

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Role, password, token::ACCESS_TOKEN_TTL_SECS};
use crate::{
    http::ApiError,
    ids::UserId,
    metrics::{self, MetricValue},
    secret::Secret,
    services::Services,
    throttle::{LoginThrottle, Subject},
    users::{self, User},
};

/// Lifetime of a refresh token.
pub const REFRESH_TOKEN_TTL_DAYS: i64 = 7;
/// The length of a refresh token: 32 bytes in unpadded base64url.
pub const REFRESH_TOKEN_LEN: usize = 43;
/// The longest username a login accepts (longer: 400 naming `username`).
pub const LOGIN_MAX_USERNAME: usize = 64;

const BAD_CREDENTIALS: &str = "invalid username or password";
const BAD_REFRESH: &str = "invalid refresh token";

/// The caller's network address, as a request extension. The function's Lambda glue inserts it
/// from API Gateway's request context (`requestContext.http.sourceIp`), which the client cannot
/// forge. Without it (plain axum: local tools, tests) the first hop of `X-Forwarded-For` is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceIp(pub String);

impl SourceIp {
    /// The address of a request: the extension, else `X-Forwarded-For`'s first hop, else `unknown`.
    pub fn of(extensions: &http::Extensions, headers: &http::HeaderMap) -> String {
        if let Some(SourceIp(ip)) = extensions.get::<SourceIp>() {
            return ip.clone();
        }
        headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|hop| hop.trim().parse::<std::net::IpAddr>().ok())
            .map_or_else(|| "unknown".to_string(), |ip| ip.to_string())
    }
}

/// `POST /api/auth/login` and `/refresh` answer.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// A JWT (HS256) for `Authorization: Bearer`.
    pub access_token: String,
    #[schema(example = "bearer")]
    pub token_type: String,
    /// Seconds the access token lives (1800).
    #[schema(example = 1800)]
    pub expires_in: i64,
    /// Opaque, single use: `POST /api/auth/refresh` exchanges it for the next pair.
    #[schema(example = "q0Jm4X8a2b9V1rT6yWc3nP5sD7fG0hK2lZxC4vB6nM8")]
    pub refresh_token: String,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenPair([redacted])")
    }
}

/// A password or token field: kept out of `Debug` and logs from the moment it is parsed.
fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    String::deserialize(d).map(Secret::new)
}

/// The body of `POST /api/auth/register`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 3 to 32 of `a-z`, `0-9`, `_`.
    #[schema(example = "ann_99", pattern = r"^[a-z0-9_]{3,32}$")]
    pub username: String,
    /// 10 to 128 characters, not the username.
    #[serde(deserialize_with = "secret")]
    #[schema(value_type = String, example = "a long password", min_length = 10, max_length = 128, pattern = r"^[^\u0000]*$")]
    pub password: Secret,
    /// `local@domain.tld`: no space or control character, a dot inside the domain.
    #[serde(default)]
    #[schema(
        example = "ann@example.com",
        max_length = 254,
        pattern = r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s.\x00-\x1f\x7f-\x9f][^@\s\x00-\x1f\x7f-\x9f]*\.[^@\s\x00-\x1f\x7f-\x9f]*[^@\s.\x00-\x1f\x7f-\x9f]$"
    )]
    pub email: Option<String>,
}

impl From<RegisterRequest> for NewAccount {
    fn from(r: RegisterRequest) -> Self {
        NewAccount { username: r.username, password: r.password, email: r.email }
    }
}

/// The body of `POST /api/auth/login`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "ann_99", min_length = 1, max_length = 64, pattern = r"^[^\u0000]*$")]
    pub username: String,
    #[serde(deserialize_with = "secret")]
    #[schema(value_type = String, example = "a long password", min_length = 1, max_length = 128, pattern = r"^[^\u0000]*$")]
    pub password: Secret,
}

/// The body of `POST /api/auth/refresh` and `/logout`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The `refresh_token` of the last pair.
    #[serde(deserialize_with = "secret")]
    #[schema(value_type = String, min_length = 1, max_length = 256, pattern = r"^[^\u0000]*$")]
    pub refresh_token: Secret,
}

impl RefreshRequest {
    /// The token, or a 400 naming `refresh_token` when it is empty or longer than 256 characters.
    pub fn token(self) -> Result<Secret, ApiError> {
        let t = self.refresh_token;
        if t.expose().is_empty() {
            return Err(ApiError::invalid_field("refresh_token", "must not be empty"));
        }
        if t.expose().len() > 256 {
            return Err(ApiError::invalid_field("refresh_token", "at most 256 characters"));
        }
        Ok(t)
    }
}

/// A registration request, validated.
pub struct NewAccount {
    pub username: String,
    pub password: Secret,
    pub email: Option<String>,
}

/// Validates and creates an account with role `user`; 409 when the username is taken.
pub async fn register(services: &Services, account: NewAccount) -> Result<User, ApiError> {
    if !services.flags().await.registration_open {
        return Err(ApiError::Forbidden("registration is closed".into()));
    }
    users::validate_username("username", &account.username)?;
    users::validate_password("password", account.password.expose(), &account.username)?;
    if let Some(email) = &account.email {
        users::validate_email("email", email)?;
    }
    let pool = services.db.pool().await?;
    if users::get_by_username(pool, &account.username).await?.is_some() {
        return Err(taken());
    }
    let hash = hash_blocking(account.password).await?;
    let user =
        users::create(pool, &account.username, account.email.as_deref(), &hash, Role::User).await?.ok_or_else(taken)?;
    tracing::info!(user_id = %user.id, username = %user.username, "account registered");
    Ok(user)
}

fn taken() -> ApiError {
    ApiError::Conflict("username is taken".into())
}

/// argon2id on the blocking pool: tens of milliseconds of CPU must not stall the runtime.
pub async fn hash_blocking(password: Secret) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

async fn verify_blocking(password: Secret, stored: Option<String>) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        // An unknown user is verified against a dummy hash: the same work, the same time.
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| password::dummy_hash().to_string());
        password::verify(&password, &phc) && known
    })
    .await
    .map_err(ApiError::internal)
}

/// Logs in. The attempt is reserved in the throttle before the password is verified: 429 (even
/// with the right password) when this username from this address, or this address, is over its
/// limit, or while the username is paced ([`crate::throttle`]); 401 with one message for an
/// unknown user, a wrong password or a deactivated account. Logs name the username only by its
/// keyed hash.
pub async fn login(
    services: &Services,
    username: &str,
    password: Secret,
    source_ip: &str,
) -> Result<TokenPair, ApiError> {
    let now = Utc::now();
    let who = services.identity().await?.username(username);
    let subjects = Subject::of_attempt(&who, source_ip);
    let dynamodb = services.aws.dynamodb().await;
    let throttle = LoginThrottle::new(dynamodb, &services.config.aws.table_name, &services.config.auth);
    if let Err(e) = throttle.reserve(&subjects, now.timestamp()).await {
        if matches!(e, ApiError::TooManyRequests { .. }) {
            login_failure(&who, source_ip, "throttled");
        }
        return Err(e);
    }

    let pool = services.db.pool().await?;
    let credentials = users::credentials(pool, username).await?;
    let stored = credentials.as_ref().map(|c| c.password_hash.clone());
    let matches = verify_blocking(password, stored).await?;

    let account = match credentials {
        Some(c) if matches && c.is_active => c,
        other => {
            let reason = match other {
                None => "unknown_user",
                Some(c) if !c.is_active && matches => "inactive",
                Some(_) => "wrong_password",
            };
            // The reservation stays: it was a failed attempt.
            login_failure(&who, source_ip, reason);
            return Err(ApiError::Unauthorized(BAD_CREDENTIALS.into()));
        }
    };

    throttle.succeeded(&subjects).await?;
    users::record_login(pool, account.id).await?;
    let keys = services.token_keys().await?;
    let refresh = insert_refresh_token(&mut *pool.acquire().await?, account.id, Uuid::new_v4(), now).await?;
    let pair = access_pair(keys, account.id, account.role, account.token_version, &refresh, now);
    tracing::info!(user_id = %account.id, source_ip, "login succeeded");
    Ok(pair)
}

fn login_failure(username_hash: &str, source_ip: &str, reason: &'static str) {
    // Never the password, nor the typed username (it may be a password): its keyed hash.
    tracing::warn!(username_hash, source_ip, reason, "login failed");
    metrics::emit(&[("reason", reason)], &[("login_failures_total", MetricValue::Count(1.0))]);
}

fn access_pair(
    keys: &crate::auth::TokenKeys,
    user: UserId,
    role: Role,
    version: i64,
    refresh: &Secret,
    now: DateTime<Utc>,
) -> TokenPair {
    let (access_token, _) = keys.issue(user, role, version, now);
    TokenPair {
        access_token,
        token_type: "bearer".into(),
        expires_in: ACCESS_TOKEN_TTL_SECS,
        refresh_token: refresh.expose().to_string(),
    }
}

/// Stores a new refresh token of `family` (on the caller's connection: inside the rotation's
/// transaction when it is one) and returns it.
async fn insert_refresh_token(
    conn: &mut sqlx::PgConnection,
    user: UserId,
    family: Uuid,
    now: DateTime<Utc>,
) -> Result<Secret, ApiError> {
    let refresh_token = new_refresh_token();
    sqlx::query!(
        "INSERT INTO refresh_tokens (user_id, family_id, token_hash, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        user.0,
        family,
        token_hash(&refresh_token),
        now,
        now + Duration::days(REFRESH_TOKEN_TTL_DAYS),
    )
    .execute(conn)
    .await?;
    Ok(refresh_token)
}

/// Locks the account's row for the rest of the transaction and returns its role, active flag
/// and token version. Every change to an account's sessions (rotation, logout, revocation of a
/// family, deactivation) takes this lock first, so they happen one after another and each
/// statement after it sees what the previous one committed (a family revoked by a logout
/// includes the token a concurrent rotation inserted just before).
async fn lock_account(conn: &mut sqlx::PgConnection, user: UserId) -> Result<Option<(Role, bool, i64)>, ApiError> {
    let row = sqlx::query!("SELECT role, is_active, token_version FROM users WHERE id = $1 FOR UPDATE", user.0)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| (Role::parse(&r.role).unwrap_or(Role::User), r.is_active, r.token_version)))
}

/// Ends every access token of the account issued so far (they carry an older version).
pub async fn bump_token_version(conn: &mut sqlx::PgConnection, user: UserId) -> Result<(), ApiError> {
    sqlx::query!("UPDATE users SET token_version = token_version + 1 WHERE id = $1", user.0).execute(conn).await?;
    Ok(())
}

/// Exchanges a refresh token for a new pair, in one transaction under the account's lock: the
/// presented token is marked rotated and its successor inserted together. A rotated token
/// presented again revokes its family and ends the account's access tokens.
pub async fn refresh(services: &Services, presented: &Secret) -> Result<TokenPair, ApiError> {
    let hash = checked_hash(presented)?;
    let keys = services.token_keys().await?;
    let pool = services.db.pool().await?;
    let now = Utc::now();
    let mut tx = pool.begin().await?;
    let owner: Option<i64> = sqlx::query_scalar!("SELECT user_id FROM refresh_tokens WHERE token_hash = $1", hash)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(user) = owner.map(UserId) else {
        return Err(ApiError::Unauthorized(BAD_REFRESH.into()));
    };
    let Some((role, active, version)) = lock_account(&mut tx, user).await? else {
        return Err(ApiError::Unauthorized(BAD_REFRESH.into()));
    };
    let row = sqlx::query!(
        "SELECT id, family_id, expires_at, rotated_at, revoked_at FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
        hash
    )
    .fetch_optional(&mut *tx)
    .await?
    .map(|r| (r.id, r.family_id, r.expires_at, r.rotated_at, r.revoked_at));
    let Some((id, family, expires_at, rotated_at, revoked_at)) = row else {
        return Err(ApiError::Unauthorized(BAD_REFRESH.into()));
    };
    if revoked_at.is_some() || expires_at <= now || !active {
        return Err(ApiError::Unauthorized(BAD_REFRESH.into()));
    }
    if rotated_at.is_some() {
        let revoked = revoke_family(&mut tx, family).await?;
        bump_token_version(&mut tx, user).await?;
        tx.commit().await?;
        services.publish_account_state(user).await;
        tracing::warn!(user_id = %user, family_id = %family, revoked, "refresh token reused: its family is revoked");
        metrics::emit(&[], &[("refresh_token_reuse_total", MetricValue::Count(1.0))]);
        return Err(ApiError::Unauthorized(BAD_REFRESH.into()));
    }
    sqlx::query!("UPDATE refresh_tokens SET rotated_at = $2 WHERE id = $1", id, now).execute(&mut *tx).await?;
    let next = insert_refresh_token(&mut tx, user, family, now).await?;
    tx.commit().await?;
    Ok(access_pair(keys, user, role, version, &next, now))
}

/// Ends the session of a refresh token: its whole family is revoked and the account's access
/// tokens end (the token version is bumped: logout signs the account out everywhere). One
/// transaction under the account's lock. Idempotent for a known token.
pub async fn logout(services: &Services, presented: &Secret) -> Result<(), ApiError> {
    let hash = checked_hash(presented)?;
    let pool = services.db.pool().await?;
    let mut tx = pool.begin().await?;
    let found = sqlx::query!("SELECT user_id, family_id FROM refresh_tokens WHERE token_hash = $1", hash)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| (r.user_id, r.family_id));
    let (user, family) = found.ok_or_else(|| ApiError::Unauthorized(BAD_REFRESH.into()))?;
    let user = UserId(user);
    if lock_account(&mut tx, user).await?.is_none() {
        return Err(ApiError::Unauthorized(BAD_REFRESH.into()));
    }
    revoke_family(&mut tx, family).await?;
    bump_token_version(&mut tx, user).await?;
    tx.commit().await?;
    services.publish_account_state(user).await;
    Ok(())
}

async fn revoke_family(tx: &mut sqlx::PgConnection, family: Uuid) -> Result<u64, ApiError> {
    let done = sqlx::query!(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
        family
    )
    .execute(tx)
    .await?;
    Ok(done.rows_affected())
}

/// A new refresh token: 32 bytes from the OS-seeded CSPRNG, unpadded base64url.
pub fn new_refresh_token() -> Secret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(base64url(&bytes))
}

/// SHA-256 of the token's text: what the database stores.
pub fn token_hash(token: &Secret) -> Vec<u8> {
    Sha256::digest(token.expose().as_bytes()).to_vec()
}

fn checked_hash(token: &Secret) -> Result<Vec<u8>, ApiError> {
    let t = token.expose();
    if t.len() != REFRESH_TOKEN_LEN || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(ApiError::Unauthorized(BAD_REFRESH.into()));
    }
    Ok(token_hash(token))
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_the_rfc_vectors() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn refresh_tokens_are_43_url_safe_characters_and_differ() {
        let a = new_refresh_token();
        let b = new_refresh_token();
        assert_eq!(a.expose().len(), REFRESH_TOKEN_LEN);
        assert!(checked_hash(&a).is_ok());
        assert_ne!(a, b);
        assert_eq!(token_hash(&a).len(), 32);
        assert!(checked_hash(&Secret::new("short")).is_err());
        assert!(checked_hash(&Secret::new("=".repeat(43))).is_err());
    }

    #[test]
    fn the_source_ip_prefers_the_extension_then_the_first_forwarded_hop() {
        let (mut parts, _) = http::Request::new(()).into_parts();
        assert_eq!(SourceIp::of(&parts.extensions, &parts.headers), "unknown");
        parts.headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.1".parse().unwrap());
        assert_eq!(SourceIp::of(&parts.extensions, &parts.headers), "203.0.113.9");
        parts.headers.insert("x-forwarded-for", "not-an-ip".parse().unwrap());
        assert_eq!(SourceIp::of(&parts.extensions, &parts.headers), "unknown");
        parts.extensions.insert(SourceIp("198.51.100.7".into()));
        assert_eq!(SourceIp::of(&parts.extensions, &parts.headers), "198.51.100.7");
    }
}
