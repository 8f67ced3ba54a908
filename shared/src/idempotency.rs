//! Idempotency-Key records in DynamoDB: the same key and body within 24 hours returns the first response.
