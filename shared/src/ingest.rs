//! Ingestion from the football-data.org v4 API: the client (rate limits, back-off, deadline) and idempotent upserts.
