//! Job discipline shared by every scheduled job: typed inputs, retryable errors, a DynamoDB lease lock, run records, checkpoints, deadlines.
