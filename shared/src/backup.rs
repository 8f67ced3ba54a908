//! Backups: streamed logical backups of every table to S3 with a manifest, restore, and the restore drill.
