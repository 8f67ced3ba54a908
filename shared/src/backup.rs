//! Backups: a streamed logical backup of every table to S3 with a manifest, restore, and the
//! restore drill.
//!
//! # Layout
//!
//! `<prefix><backup_id>/<NN>_<table>.copy.gz` for each table, then `<prefix><backup_id>/manifest.json`
//! written last. A backup without a manifest (a run that failed or was stopped) is never taken for
//! a good one: restore and verify read the manifest first, check that every file it names exists
//! with its size, and check each file's SHA-256 while they load it. Retention (30 days) is an S3
//! lifecycle rule in the template; no code deletes backups.
//!
//! # Backup
//!
//! One `REPEATABLE READ, READ ONLY` transaction (a consistent snapshot of all tables). Each table,
//! in foreign-key order, is read with `COPY (SELECT <columns> FROM t ORDER BY <primary key>) TO
//! STDOUT`, gzip-compressed as it arrives and sent to an S3 multipart upload part by part
//! (`part_size`, default 8 MiB), so memory holds about two parts whatever the database's size.
//! The manifest records per table the columns, row count, compressed size, the file's SHA-256
//! and the SHA-256 of the uncompressed rows (`content_sha256`), plus the schema version (the
//! latest migration) and the time.
//!
//! # Restore and verify
//!
//! Restore loads a backup into an empty database of the same schema version (migrations applied
//! first, every table empty), with `COPY ... FROM STDIN` in the manifest's order, all in one
//! transaction: a file whose checksum or row count is not the manifest's rolls everything back.
//! Sequences are then set past the highest ids, and each table's row count and content checksum
//! are read back and compared with the manifest. Verify (the drill) does that in a scratch
//! database `fp_drill_<time>`, dropped afterwards, and fails loudly (error + `backup_verify_success`
//! = 0) on any difference.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write,
    sync::Arc,
    time::Instant,
};

use aws_sdk_s3::{
    primitives::ByteStream,
    types::{CompletedMultipartUpload, CompletedPart},
};
use flate2::{Compression, write::GzDecoder, write::GzEncoder};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor, PgConnection, PgPool};

use crate::{
    Services,
    jobs::{self, Deadline, JobError, JobReport, WorkDone},
    metrics::{self, MetricValue},
};

pub const MANIFEST_FORMAT: &str = "fp-backup/1";
pub const DEFAULT_PREFIX: &str = "backups/";
const MIN_PART: usize = 5 * 1024 * 1024;

/// What the backup function does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Backup,
    Restore,
    Verify,
}

/// The `backup` function's input: `{}` backs up, `{"mode":"verify"}` runs the drill on the latest
/// backup, `{"mode":"restore","backup_id":"..."}` restores into the configured (empty) database.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BackupInput {
    pub mode: Mode,
    /// The backup to restore or verify (verify: default the latest complete one).
    pub backup_id: Option<String>,
    /// Restore into this database of the same server (created when missing) instead of the
    /// configured one.
    pub target_database: Option<String>,
    /// Key prefix of the backups, default `backups/`.
    pub prefix: Option<String>,
    /// Multipart upload part size in MiB, 5 to 64 (default 8).
    pub part_size_mib: Option<usize>,
}

impl BackupInput {
    fn prefix(&self) -> Result<String, JobError> {
        let p = self.prefix.clone().unwrap_or_else(|| DEFAULT_PREFIX.into());
        let ok = p.len() <= 200
            && p.ends_with('/')
            && !p.starts_with('/')
            && !p.contains("..")
            && p.chars().all(|c| c.is_ascii_alphanumeric() || "/_-.".contains(c));
        if !ok {
            return Err(JobError::Permanent(format!("prefix {p:?} must be a relative key prefix ending in '/'")));
        }
        Ok(p)
    }

    fn part_size(&self) -> Result<usize, JobError> {
        match self.part_size_mib {
            None => Ok(8 * 1024 * 1024),
            Some(n @ 5..=64) => Ok(n * 1024 * 1024),
            Some(n) => Err(JobError::Permanent(format!("part_size_mib must be between 5 and 64, got {n}"))),
        }
    }
}

/// Where backups live.
#[derive(Clone)]
pub struct Store {
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    pub prefix: String,
}

fn s3_err<E: std::error::Error + 'static>(what: &str, e: aws_sdk_s3::error::SdkError<E>) -> JobError {
    JobError::Retryable(format!("S3 {what}: {}", aws_sdk_s3::error::DisplayErrorContext(&e)))
}

/// One table of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    pub name: String,
    pub columns: Vec<String>,
    /// The file's key, relative to the backup's folder.
    pub file: String,
    pub rows: u64,
    /// Size of the compressed file.
    pub bytes: u64,
    /// SHA-256 of the compressed file.
    pub sha256: String,
    /// SHA-256 of the rows as `COPY` text, ordered by primary key.
    pub content_sha256: String,
}

/// The manifest: written last; its presence is what makes a backup complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub backup_id: String,
    /// The latest migration applied to the database backed up.
    pub schema_version: i64,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: chrono::DateTime<chrono::Utc>,
    /// In restore order (foreign keys first).
    pub tables: Vec<TableEntry>,
}

impl Manifest {
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    pub fn total_bytes(&self) -> u64 {
        self.tables.iter().map(|t| t.bytes).sum()
    }
}

/// Called after each table is uploaded (progress logs; tests use it to cut S3 off halfway).
pub type TableHook = Arc<dyn Fn(&TableEntry) + Send + Sync>;

/// Options of one backup.
#[derive(Clone)]
pub struct BackupOptions {
    pub part_size: usize,
    pub compression: u32,
    pub on_table: Option<TableHook>,
}

impl Default for BackupOptions {
    fn default() -> Self {
        Self { part_size: 8 * 1024 * 1024, compression: 1, on_table: None }
    }
}

/// A table to copy: its columns and the ORDER BY that makes its content checksum deterministic.
#[derive(Debug, Clone)]
struct Table {
    name: String,
    columns: Vec<String>,
    order_by: Vec<String>,
}

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

impl Table {
    fn select(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|c| ident(c)).collect();
        let order = if self.order_by.is_empty() {
            String::new()
        } else {
            format!(" ORDER BY {}", self.order_by.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", "))
        };
        format!("COPY (SELECT {} FROM public.{}{order}) TO STDOUT", cols.join(", "), ident(&self.name))
    }
}

/// Session settings under which `COPY` text is the same on every server and session.
async fn stable_session(conn: &mut PgConnection) -> Result<(), JobError> {
    conn.execute(
        "SET LOCAL statement_timeout = 0; SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, MDY'; \
         SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 1; SET LOCAL bytea_output = 'hex'",
    )
    .await?;
    Ok(())
}

/// The application's tables (not the migration history), parents before children.
async fn tables(conn: &mut PgConnection) -> Result<Vec<Table>, JobError> {
    let names: Vec<String> = sqlx::query_scalar!(
        r#"SELECT c.relname::text AS "name!" FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> '_sqlx_migrations' ORDER BY 1"#
    )
    .fetch_all(&mut *conn)
    .await?;
    let edges: Vec<(String, String)> = sqlx::query!(
        r#"SELECT c.relname::text AS "child!", p.relname::text AS "parent!" FROM pg_constraint k
         JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE k.contype = 'f' AND n.nspname = 'public' AND k.conrelid <> k.confrelid"#
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|e| (e.child, e.parent))
    .collect();
    // Kahn's algorithm, alphabetical among equals: a stable order.
    let mut parents: BTreeMap<&str, BTreeSet<&str>> = names.iter().map(|n| (n.as_str(), BTreeSet::new())).collect();
    for (child, parent) in &edges {
        if let Some(p) = parents.get_mut(child.as_str())
            && names.contains(parent)
        {
            p.insert(parent.as_str());
        }
    }
    let mut order: Vec<String> = Vec::new();
    while !parents.is_empty() {
        let ready: Vec<&str> = parents.iter().filter(|(_, p)| p.is_empty()).map(|(n, _)| *n).collect();
        if ready.is_empty() {
            return Err(JobError::Permanent(format!("foreign keys form a cycle among {:?}", parents.keys())));
        }
        for n in ready {
            parents.remove(n);
            for p in parents.values_mut() {
                p.remove(n);
            }
            order.push(n.to_string());
        }
    }
    let mut out = Vec::with_capacity(order.len());
    for name in order {
        let columns: Vec<String> = sqlx::query_scalar!(
            r#"SELECT a.attname::text AS "name!" FROM pg_attribute a
             WHERE a.attrelid = ('public.' || quote_ident($1))::regclass
             AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum"#,
            name
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut order_by: Vec<String> = sqlx::query_scalar!(
            r#"SELECT a.attname::text AS "name!" FROM pg_index i
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[])
             WHERE i.indrelid = ('public.' || quote_ident($1))::regclass AND i.indisprimary
             ORDER BY array_position(i.indkey::int2[], a.attnum)"#,
            name
        )
        .fetch_all(&mut *conn)
        .await?;
        if order_by.is_empty() {
            order_by = columns.clone();
        }
        out.push(Table { name, columns, order_by });
    }
    Ok(out)
}

async fn schema_version(conn: &mut PgConnection) -> Result<i64, JobError> {
    let v: Option<i64> = sqlx::query_scalar!("SELECT max(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| JobError::Permanent(format!("reading the schema version: {e}")))?;
    v.ok_or_else(|| JobError::Permanent("the database has no migration applied".into()))
}

/// The latest migration this build knows.
pub fn latest_migration() -> i64 {
    crate::db::MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// A multipart upload, aborted on failure.
struct Upload<'a> {
    store: &'a Store,
    key: String,
    id: String,
    parts: Vec<CompletedPart>,
    sha: Sha256,
    bytes: u64,
}

impl<'a> Upload<'a> {
    async fn start(store: &'a Store, key: String) -> Result<Self, JobError> {
        let out = store
            .s3
            .create_multipart_upload()
            .bucket(&store.bucket)
            .key(&key)
            .content_type("application/gzip")
            .send()
            .await
            .map_err(|e| s3_err("create multipart upload", e))?;
        let id = out.upload_id.ok_or_else(|| JobError::Retryable("S3 gave no upload id".into()))?;
        Ok(Self { store, key, id, parts: Vec::new(), sha: Sha256::new(), bytes: 0 })
    }

    async fn part(&mut self, data: Vec<u8>) -> Result<(), JobError> {
        self.sha.update(&data);
        self.bytes += data.len() as u64;
        let n = self.parts.len() as i32 + 1;
        let out = self
            .store
            .s3
            .upload_part()
            .bucket(&self.store.bucket)
            .key(&self.key)
            .upload_id(&self.id)
            .part_number(n)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| s3_err("upload part", e))?;
        self.parts.push(CompletedPart::builder().part_number(n).set_e_tag(out.e_tag).build());
        Ok(())
    }

    async fn complete(self) -> Result<(String, u64), JobError> {
        self.store
            .s3
            .complete_multipart_upload()
            .bucket(&self.store.bucket)
            .key(&self.key)
            .upload_id(&self.id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(self.parts)).build())
            .send()
            .await
            .map_err(|e| s3_err("complete multipart upload", e))?;
        Ok((hex::encode(self.sha.finalize()), self.bytes))
    }

    async fn abort(self) {
        let res = self
            .store
            .s3
            .abort_multipart_upload()
            .bucket(&self.store.bucket)
            .key(&self.key)
            .upload_id(&self.id)
            .send()
            .await;
        if let Err(e) = res {
            tracing::warn!(key = %self.key, error = %aws_sdk_s3::error::DisplayErrorContext(&e), "aborting the upload failed (the bucket's lifecycle rule cleans it)");
        }
    }
}

fn new_backup_id() -> String {
    let now = chrono::Utc::now();
    format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Backs up every table of the database behind `conn` to `store`; the manifest is written last.
pub async fn backup(conn: &mut PgConnection, store: &Store, opts: &BackupOptions) -> Result<Manifest, JobError> {
    let started_at = chrono::Utc::now();
    let backup_id = new_backup_id();
    let folder = format!("{}{backup_id}/", store.prefix);
    let mut tx = conn.begin().await?;
    tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?;
    stable_session(&mut tx).await?;
    let schema_version = schema_version(&mut tx).await?;
    let tables = tables(&mut tx).await?;
    let mut entries = Vec::with_capacity(tables.len());
    for (i, table) in tables.iter().enumerate() {
        let file = format!("{:02}_{}.copy.gz", i + 1, table.name);
        let mut upload = Upload::start(store, format!("{folder}{file}")).await?;
        match copy_table_out(&mut tx, table, &mut upload, opts).await {
            Ok((rows, content_sha256)) => {
                let (sha256, bytes) = upload.complete().await?;
                let entry = TableEntry {
                    name: table.name.clone(),
                    columns: table.columns.clone(),
                    file,
                    rows,
                    bytes,
                    sha256,
                    content_sha256,
                };
                tracing::info!(table = %entry.name, rows, bytes, "table backed up");
                if let Some(hook) = &opts.on_table {
                    hook(&entry);
                }
                entries.push(entry);
            }
            Err(e) => {
                upload.abort().await;
                return Err(e.context(&format!("backing up table {}", table.name)));
            }
        }
    }
    tx.commit().await?;
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        backup_id,
        schema_version,
        started_at,
        finished_at: chrono::Utc::now(),
        tables: entries,
    };
    let body = serde_json::to_vec_pretty(&manifest).map_err(JobError::permanent)?;
    store
        .s3
        .put_object()
        .bucket(&store.bucket)
        .key(format!("{folder}manifest.json"))
        .content_type("application/json")
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| s3_err("put manifest", e))?;
    Ok(manifest)
}

async fn copy_table_out(
    conn: &mut PgConnection,
    table: &Table,
    upload: &mut Upload<'_>,
    opts: &BackupOptions,
) -> Result<(u64, String), JobError> {
    let part_size = opts.part_size.max(MIN_PART);
    let mut gz = GzEncoder::new(Vec::with_capacity(part_size + 256 * 1024), Compression::new(opts.compression.min(9)));
    let mut content = Sha256::new();
    let mut rows = 0u64;
    let mut stream = conn.copy_out_raw(&table.select()).await?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        content.update(&chunk);
        rows += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        gz.write_all(&chunk).map_err(JobError::permanent)?;
        if gz.get_ref().len() >= part_size {
            let part = std::mem::replace(gz.get_mut(), Vec::with_capacity(part_size + 256 * 1024));
            upload.part(part).await?;
        }
    }
    drop(stream);
    let tail = gz.finish().map_err(JobError::permanent)?;
    upload.part(tail).await?;
    Ok((rows, hex::encode(content.finalize())))
}

/// The backup ids under the store's prefix, newest first (complete or not).
pub async fn list_backups(store: &Store) -> Result<Vec<String>, JobError> {
    let mut ids = Vec::new();
    let mut token = None;
    loop {
        let out = store
            .s3
            .list_objects_v2()
            .bucket(&store.bucket)
            .prefix(&store.prefix)
            .delimiter("/")
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| s3_err("list backups", e))?;
        for p in out.common_prefixes() {
            if let Some(id) =
                p.prefix().and_then(|p| p.strip_prefix(store.prefix.as_str())).and_then(|p| p.strip_suffix('/'))
            {
                ids.push(id.to_string());
            }
        }
        match out.next_continuation_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    ids.sort_unstable_by(|a, b| b.cmp(a));
    Ok(ids)
}

/// A backup's manifest; `None` when the backup has none (it never finished).
pub async fn read_manifest(store: &Store, backup_id: &str) -> Result<Option<Manifest>, JobError> {
    let key = format!("{}{backup_id}/manifest.json", store.prefix);
    let out = match store.s3.get_object().bucket(&store.bucket).key(&key).send().await {
        Ok(out) => out,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
        Err(e) => return Err(s3_err("get manifest", e)),
    };
    let bytes = out.body.collect().await.map_err(|e| JobError::Retryable(format!("S3 read manifest: {e}")))?;
    let m: Manifest = serde_json::from_slice(&bytes.into_bytes())
        .map_err(|e| JobError::Permanent(format!("manifest of {backup_id} is unreadable: {e}")))?;
    if m.format != MANIFEST_FORMAT || m.backup_id != backup_id {
        return Err(JobError::Permanent(format!("manifest of {backup_id} is not a {MANIFEST_FORMAT} manifest of it")));
    }
    Ok(Some(m))
}

/// Checks that every file of the manifest exists with its recorded size (checksums are checked
/// while restoring).
pub async fn check_files(store: &Store, m: &Manifest) -> Result<(), JobError> {
    for t in &m.tables {
        let key = format!("{}{}/{}", store.prefix, m.backup_id, t.file);
        let head = match store.s3.head_object().bucket(&store.bucket).key(&key).send().await {
            Ok(h) => h,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {
                return Err(JobError::Permanent(format!(
                    "backup {} is incomplete: {} is missing",
                    m.backup_id, t.file
                )));
            }
            Err(e) => return Err(s3_err("head backup file", e)),
        };
        if head.content_length.unwrap_or(-1) != t.bytes as i64 {
            return Err(JobError::Permanent(format!(
                "backup {}: {} has {} bytes, the manifest says {}",
                m.backup_id,
                t.file,
                head.content_length.unwrap_or(-1),
                t.bytes
            )));
        }
    }
    Ok(())
}

/// The newest backup with a manifest whose files all exist.
pub async fn latest_complete(store: &Store) -> Result<Option<Manifest>, JobError> {
    for id in list_backups(store).await? {
        match read_manifest(store, &id).await {
            Ok(Some(m)) => match check_files(store, &m).await {
                Ok(()) => return Ok(Some(m)),
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => tracing::warn!(backup_id = %id, error = %e, "skipping an incomplete backup"),
            },
            Ok(None) => tracing::info!(backup_id = %id, "skipping a backup without a manifest"),
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => tracing::warn!(backup_id = %id, error = %e, "skipping a backup with a bad manifest"),
        }
    }
    Ok(None)
}

/// The manifest of `backup_id`, refusing one that is incomplete.
pub async fn complete_manifest(store: &Store, backup_id: &str) -> Result<Manifest, JobError> {
    let m = read_manifest(store, backup_id).await?.ok_or_else(|| {
        JobError::Permanent(format!("backup {backup_id} has no manifest: it is incomplete or does not exist"))
    })?;
    check_files(store, &m).await?;
    Ok(m)
}

/// What a restore loaded.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub backup_id: String,
    pub tables: usize,
    pub rows: u64,
    pub seconds: f64,
}

/// Restores `m` into the database behind `conn`, which must be migrated to the manifest's schema
/// version and empty; then checks every table's row count and content checksum.
pub async fn restore(conn: &mut PgConnection, store: &Store, m: &Manifest) -> Result<RestoreReport, JobError> {
    let started = Instant::now();
    let version = schema_version(conn).await?;
    if version != m.schema_version {
        return Err(JobError::Permanent(format!(
            "backup {} has schema version {}, the target database {version}",
            m.backup_id, m.schema_version
        )));
    }
    for t in &m.tables {
        let has_rows: bool = sqlx::query_scalar(&format!("SELECT EXISTS (SELECT 1 FROM public.{})", ident(&t.name)))
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| JobError::Permanent(format!("target table {}: {e}", t.name)))?;
        if has_rows {
            return Err(JobError::Permanent(format!("the target database is not empty: table {} has rows", t.name)));
        }
    }
    let mut tx = conn.begin().await?;
    stable_session(&mut tx).await?;
    for t in &m.tables {
        copy_table_in(&mut tx, store, m, t).await?;
    }
    reset_sequences(&mut tx).await?;
    tx.commit().await?;
    compare_with_manifest(conn, m).await?;
    Ok(RestoreReport {
        backup_id: m.backup_id.clone(),
        tables: m.tables.len(),
        rows: m.total_rows(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn copy_table_in(conn: &mut PgConnection, store: &Store, m: &Manifest, t: &TableEntry) -> Result<(), JobError> {
    let key = format!("{}{}/{}", store.prefix, m.backup_id, t.file);
    let out =
        store.s3.get_object().bucket(&store.bucket).key(&key).send().await.map_err(|e| s3_err("get backup file", e))?;
    let mut body = out.body;
    let cols: Vec<String> = t.columns.iter().map(|c| ident(c)).collect();
    let mut copy = conn
        .copy_in_raw(&format!("COPY public.{} ({}) FROM STDIN", ident(&t.name), cols.join(", ")))
        .await
        .map_err(|e| JobError::Permanent(format!("table {}: {e}", t.name)))?;
    let mut file_sha = Sha256::new();
    let mut content_sha = Sha256::new();
    let mut rows = 0u64;
    let mut gunzip = GzDecoder::new(Vec::with_capacity(1024 * 1024));
    let result: Result<(), JobError> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| JobError::Retryable(format!("S3 read {key}: {e}")))?;
            file_sha.update(&chunk);
            gunzip.write_all(&chunk).map_err(|e| JobError::Permanent(format!("{}: not gzip: {e}", t.file)))?;
            let data = std::mem::take(gunzip.get_mut());
            if !data.is_empty() {
                content_sha.update(&data);
                rows += data.iter().filter(|&&b| b == b'\n').count() as u64;
                copy.send(data).await?;
            }
        }
        gunzip.try_finish().map_err(|e| JobError::Permanent(format!("{}: truncated gzip: {e}", t.file)))?;
        let data = std::mem::take(gunzip.get_mut());
        if !data.is_empty() {
            content_sha.update(&data);
            rows += data.iter().filter(|&&b| b == b'\n').count() as u64;
            copy.send(data).await?;
        }
        let file = hex::encode(file_sha.finalize_reset());
        if file != t.sha256 {
            return Err(JobError::Permanent(format!(
                "backup {} file {} has SHA-256 {file}, the manifest says {}: the backup is corrupt",
                m.backup_id, t.file, t.sha256
            )));
        }
        let content = hex::encode(content_sha.finalize_reset());
        if content != t.content_sha256 || rows != t.rows {
            return Err(JobError::Permanent(format!(
                "backup {} file {}: {rows} rows with content SHA-256 {content}, the manifest says {} rows, {}",
                m.backup_id, t.file, t.rows, t.content_sha256
            )));
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            copy.finish().await.map_err(|e| JobError::Permanent(format!("loading table {}: {e}", t.name)))?;
            Ok(())
        }
        Err(e) => {
            let _ = copy.abort(e.to_string()).await;
            Err(e)
        }
    }
}

async fn reset_sequences(conn: &mut PgConnection) -> Result<(), JobError> {
    let cols: Vec<(String, String, String)> = sqlx::query!(
        r#"SELECT c.relname::text AS "table!", a.attname::text AS "column!",
                pg_get_serial_sequence(quote_ident(c.relname), a.attname)::text AS "seq!"
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE n.nspname = 'public' AND c.relkind = 'r'
           AND pg_get_serial_sequence(quote_ident(c.relname), a.attname) IS NOT NULL"#
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|c| (c.table, c.column, c.seq))
    .collect();
    for (table, column, seq) in cols {
        sqlx::query(&format!(
            "SELECT setval($1::regclass, COALESCE((SELECT max({}) FROM public.{}), 0) + 1, false)",
            ident(&column),
            ident(&table)
        ))
        .bind(seq)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Row count and content checksum of each table of `m` as the database behind `conn` has it now.
pub async fn table_checksums(conn: &mut PgConnection, m: &Manifest) -> Result<Vec<(String, u64, String)>, JobError> {
    let mut tx = conn.begin().await?;
    tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?;
    stable_session(&mut tx).await?;
    let live = tables(&mut tx).await?;
    let mut out = Vec::new();
    for t in &m.tables {
        let order_by = live.iter().find(|l| l.name == t.name).map(|l| l.order_by.clone()).unwrap_or_default();
        let table = Table { name: t.name.clone(), columns: t.columns.clone(), order_by };
        let mut sha = Sha256::new();
        let mut rows = 0u64;
        let mut stream = tx.copy_out_raw(&table.select()).await?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            sha.update(&chunk);
            rows += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        }
        drop(stream);
        out.push((t.name.clone(), rows, hex::encode(sha.finalize())));
    }
    tx.commit().await?;
    Ok(out)
}

async fn compare_with_manifest(conn: &mut PgConnection, m: &Manifest) -> Result<(), JobError> {
    let mut differences = Vec::new();
    for ((name, rows, sha), t) in table_checksums(conn, m).await?.into_iter().zip(&m.tables) {
        if rows != t.rows || sha != t.content_sha256 {
            differences.push(format!(
                "{name}: {rows} rows (manifest {}), checksum {}",
                t.rows,
                if sha == t.content_sha256 { "equal" } else { "differs" }
            ));
        }
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(JobError::Permanent(format!(
            "restored data differs from backup {}: {}",
            m.backup_id,
            differences.join("; ")
        )))
    }
}

/// What the drill found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub backup_id: String,
    pub scratch_database: String,
    pub tables: usize,
    pub rows: u64,
    pub backup_age_hours: f64,
    pub seconds: f64,
}

/// The restore drill: restores `backup_id` (default the latest complete backup) into a scratch
/// database on the server of `pool`, compares it with the manifest, drops the scratch database.
pub async fn verify(pool: &PgPool, store: &Store, backup_id: Option<&str>) -> Result<VerifyReport, JobError> {
    let started = Instant::now();
    let m = match backup_id {
        Some(id) => complete_manifest(store, id).await?,
        None => latest_complete(store)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("no complete backup under {}", store.prefix)))?,
    };
    let name = format!(
        "fp_drill_{}_{}",
        chrono::Utc::now().format("%Y%m%d%H%M%S"),
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    );
    pool.execute(format!("CREATE DATABASE {}", ident(&name)).as_str()).await?;
    let result = async {
        let options = pool.connect_options().as_ref().clone().database(&name);
        let mut conn = PgConnection::connect_with(&options).await?;
        crate::db::MIGRATOR.run(&mut conn).await.map_err(|e| JobError::Permanent(format!("migrating {name}: {e}")))?;
        let report = restore(&mut conn, store, &m).await;
        let _ = conn.close().await;
        report
    }
    .await;
    if let Err(e) = pool.execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident(&name)).as_str()).await {
        tracing::warn!(database = %name, error = %e, "dropping the drill database failed");
    }
    let age = (chrono::Utc::now() - m.finished_at).num_seconds() as f64 / 3600.0;
    let restored = result?;
    Ok(VerifyReport {
        backup_id: m.backup_id,
        scratch_database: name,
        tables: restored.tables,
        rows: restored.rows,
        backup_age_hours: age,
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn store_of(services: &Services, prefix: String) -> Store {
    Store { s3: services.aws.s3().await.clone(), bucket: services.config.aws.backup_bucket.clone(), prefix }
}

/// The job: backup, restore or verify, under the lock of its own name.
pub async fn run(services: &Services, input: &BackupInput, deadline: Deadline) -> Result<JobReport, JobError> {
    let prefix = input.prefix()?;
    let part_size = input.part_size()?;
    let input = input.clone();
    let s = services.clone();
    let job = match input.mode {
        Mode::Backup => "backup",
        Mode::Restore => "restore",
        Mode::Verify => "verify",
    };
    let result = jobs::run(services, job, deadline, |_ctx| async move {
        let store = store_of(&s, prefix).await;
        let pool = s.db.pool().await?.clone();
        match input.mode {
            Mode::Backup => {
                let started = Instant::now();
                let mut conn = pool.acquire().await?;
                let opts = BackupOptions { part_size, ..BackupOptions::default() };
                let m = backup(&mut conn, &store, &opts).await?;
                let secs = started.elapsed().as_secs_f64();
                metrics::emit(
                    &[("job", "backup")],
                    &[
                        ("backup_success", MetricValue::Count(1.0)),
                        ("backup_rows", MetricValue::Count(m.total_rows() as f64)),
                        ("backup_bytes", MetricValue::None(m.total_bytes() as f64)),
                        ("backup_duration_seconds", MetricValue::Seconds(secs)),
                    ],
                );
                Ok(WorkDone::complete(serde_json::json!({
                    "backup_id": m.backup_id, "tables": m.tables.len(), "rows": m.total_rows(),
                    "bytes": m.total_bytes(), "schema_version": m.schema_version, "seconds": secs,
                })))
            }
            Mode::Restore => {
                let id =
                    input.backup_id.as_deref().ok_or_else(|| JobError::Permanent("restore needs backup_id".into()))?;
                let m = complete_manifest(&store, id).await?;
                let mut conn = match &input.target_database {
                    None => pool.acquire().await?.detach(),
                    Some(db) => {
                        let exists: bool = sqlx::query_scalar!(
                            r#"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists!""#,
                            db
                        )
                        .fetch_one(&pool)
                        .await?;
                        if !exists {
                            pool.execute(format!("CREATE DATABASE {}", ident(db)).as_str()).await?;
                        }
                        PgConnection::connect_with(&pool.connect_options().as_ref().clone().database(db)).await?
                    }
                };
                crate::db::MIGRATOR
                    .run(&mut conn)
                    .await
                    .map_err(|e| JobError::Permanent(format!("migrating the target: {e}")))?;
                let r = restore(&mut conn, &store, &m).await?;
                let _ = conn.close().await;
                Ok(WorkDone::complete(serde_json::to_value(r).map_err(JobError::permanent)?))
            }
            Mode::Verify => match verify(&pool, &store, input.backup_id.as_deref()).await {
                Ok(r) => {
                    metrics::emit(
                        &[("job", "verify")],
                        &[
                            ("backup_verify_success", MetricValue::Count(1.0)),
                            ("backup_age_hours", MetricValue::None(r.backup_age_hours)),
                            ("backup_verify_duration_seconds", MetricValue::Seconds(r.seconds)),
                        ],
                    );
                    Ok(WorkDone::complete(serde_json::to_value(r).map_err(JobError::permanent)?))
                }
                Err(e) => {
                    metrics::emit(&[("job", "verify")], &[("backup_verify_success", MetricValue::Count(0.0))]);
                    tracing::error!(error = %e, "RESTORE DRILL FAILED");
                    Err(e)
                }
            },
        }
    })
    .await;
    if result.is_err() && input.mode == Mode::Backup {
        metrics::emit(&[("job", "backup")], &[("backup_success", MetricValue::Count(0.0))]);
    }
    result
}
