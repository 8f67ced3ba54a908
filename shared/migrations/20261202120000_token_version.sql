-- Sessions end when the user says so (issue 12): every access token carries the account's token
-- version (`ver`); logout, deactivation and refresh-token reuse bump it, and a request with an
-- older version is refused.
ALTER TABLE users ADD COLUMN token_version BIGINT NOT NULL DEFAULT 0;
