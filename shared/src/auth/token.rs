//! Access tokens: JWT HS256 with `sub`, `role`, `ver`, `iat`, `exp`, `iss`, `aud`, `jti`. `ver`
//! is the account's token version when the token was issued: logout, deactivation, a role change
//! and refresh-token reuse bump it, and every request refuses a token of an older version. Validation pins
//! the algorithm (so `alg: none` and RS/HS confusion fail) and checks expiry, issuer and audience
//! with a small leeway.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{ids::UserId, secret::Secret};

/// Lifetime of an access token.
pub const ACCESS_TOKEN_TTL_SECS: i64 = 30 * 60;
/// Clock skew tolerated on `exp` / `iat`.
pub const LEEWAY_SECS: u64 = 30;

/// `user` or `admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// `user_7`
    pub sub: UserId,
    pub role: Role,
    /// The account's token version at issue (absent in tokens issued before versions: 0).
    #[serde(default)]
    pub ver: i64,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    pub jti: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the signing key must be at least 32 bytes")]
    WeakKey,
    #[error("token expired")]
    Expired,
    #[error("invalid token")]
    Invalid,
}

/// The keys and rules of access tokens, built once per cold start from the signing key.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
}

impl TokenKeys {
    pub fn new(key: &Secret, issuer: &str, audience: &str) -> Result<Self, TokenError> {
        let bytes = key.expose().as_bytes();
        if bytes.len() < 32 {
            return Err(TokenError::WeakKey);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
        })
    }

    /// A signed access token for `user` at token version `version`, and its claims.
    pub fn issue(&self, user: UserId, role: Role, version: i64, now: DateTime<Utc>) -> (String, Claims) {
        let iat = now.timestamp();
        let claims = Claims {
            sub: user,
            role,
            ver: version,
            iat,
            exp: iat + ACCESS_TOKEN_TTL_SECS,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with a valid key cannot fail");
        (token, claims)
    }

    /// The claims of a valid token.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map(|data| data.claims).map_err(|e| {
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(&Secret::new("k".repeat(40)), "football-prediction", "football-prediction-api").unwrap()
    }

    #[test]
    fn issues_and_verifies() {
        let (token, claims) = keys().issue(UserId(7), Role::Admin, 0, Utc::now());
        let back = keys().verify(&token).unwrap();
        assert_eq!(back, claims);
        assert_eq!(back.exp - back.iat, 1800);
    }

    #[test]
    fn refuses_expired_foreign_and_unsigned_tokens() {
        let k = keys();
        let (old, _) = k.issue(UserId(7), Role::User, 0, Utc::now() - chrono::Duration::hours(2));
        assert_eq!(k.verify(&old), Err(TokenError::Expired));
        let other =
            TokenKeys::new(&Secret::new("x".repeat(40)), "football-prediction", "football-prediction-api").unwrap();
        let (forged, _) = other.issue(UserId(7), Role::Admin, 0, Utc::now());
        assert_eq!(k.verify(&forged), Err(TokenError::Invalid));
        let wrong_aud = TokenKeys::new(&Secret::new("k".repeat(40)), "football-prediction", "elsewhere").unwrap();
        let (t, _) = wrong_aud.issue(UserId(7), Role::User, 0, Utc::now());
        assert_eq!(k.verify(&t), Err(TokenError::Invalid));
        // alg: none, with the same claims.
        let (good, _) = k.issue(UserId(7), Role::Admin, 0, Utc::now());
        let payload = good.split('.').nth(1).unwrap();
        let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
        assert_eq!(k.verify(&format!("{none_header}.{payload}.")), Err(TokenError::Invalid));
        assert_eq!(k.verify("garbage"), Err(TokenError::Invalid));
        assert_eq!(TokenKeys::new(&Secret::new("short"), "i", "a").err(), Some(TokenError::WeakKey));
    }
}
