//! Users and refresh tokens: the account store.
