//! Accounts and credentials: password hashing, access tokens, and the extractors that authorize
//! a request (`AuthUser`, `AdminUser`).
pub mod extract;
pub mod identity;
pub mod password;
pub mod session;
pub mod token;

pub use extract::{AdminUser, AuthUser, UncheckedUser};
pub use identity::IdentityHasher;
pub use session::{SourceIp, TokenPair};
pub use token::{Claims, Role, TokenError, TokenKeys};
