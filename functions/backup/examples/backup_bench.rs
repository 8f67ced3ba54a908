//! Measures the backup's memory and speed on a large database (see the report in the README of
//! the jobs): `backup_bench seed <copies>` loads the EPL seasons of ../shared/data `copies` times
//! (as competitions E0, E1, ...) with users and three predictions per match into DATABASE_URL;
//! `backup_bench backup` backs that database up to BACKUP_BUCKET exactly as the job does.
//! Run it under `/usr/bin/time -v` for the peak resident set size.

use std::{path::PathBuf, time::Instant};

use shared::{
    Config, Services,
    backup::{self, BackupOptions, Store},
    jobs::testdata,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let services = Services::new(Config::from_env()?);
    let pool = services.db.pool().await?.clone();
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        "seed" => {
            let copies: usize = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(10);
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/football-data-co-uk/E0");
            let records = testdata::read_dir(&dir)?;
            let progress = shared::progress::for_stderr();
            progress.stage("seed", copies as u64);
            for c in 0..copies {
                let ids = testdata::load_matches(&pool, &format!("E{c}"), &records).await?;
                let users = testdata::create_users(&pool, &format!("fan{c}"), 100).await?;
                let preds: Vec<testdata::NewPrediction> = ids
                    .iter()
                    .enumerate()
                    .flat_map(|(i, &m)| {
                        let u = users[i % users.len()];
                        ["statistical", "historical", "ml_model"].into_iter().map(move |s| testdata::NewPrediction {
                            match_id: m,
                            user_id: Some(u),
                            strategy: s,
                            model_version: format!("{s}-v1"),
                            p: [0.45, 0.27, 0.28],
                        })
                    })
                    .collect();
                testdata::insert_predictions(&pool, &preds).await?;
                progress.set(c as u64 + 1, &format!("copy {c}: {} matches", ids.len()));
            }
            progress.finish();
        }
        "backup" => {
            let store = Store {
                s3: services.aws.s3().await.clone(),
                bucket: services.config.aws.backup_bucket.clone(),
                prefix: "bench-backups/".into(),
            };
            let started = Instant::now();
            let mut conn = pool.acquire().await?;
            // The tables are listed inside the backup's snapshot: a count without a total.
            let progress: std::sync::Arc<dyn shared::progress::Progress> = shared::progress::for_stderr().into();
            progress.stage("backup tables", 0);
            let (tick, rows) = (progress.clone(), std::sync::atomic::AtomicU64::new(0));
            let tables = std::sync::atomic::AtomicU64::new(0);
            let options = BackupOptions {
                on_table: Some(std::sync::Arc::new(move |entry: &backup::TableEntry| {
                    use std::sync::atomic::Ordering::Relaxed;
                    let total = rows.fetch_add(entry.rows, Relaxed) + entry.rows;
                    let n = tables.fetch_add(1, Relaxed) + 1;
                    tick.set(n, &format!("{} ({} rows; {total} rows in all)", entry.name, entry.rows));
                })),
                ..BackupOptions::default()
            };
            let m = backup::backup(&mut conn, &store, &options).await?;
            progress.finish();
            println!(
                "{{\"backup_id\":\"{}\",\"rows\":{},\"bytes\":{},\"seconds\":{:.3}}}",
                m.backup_id,
                m.total_rows(),
                m.total_bytes(),
                started.elapsed().as_secs_f64()
            );
        }
        _ => return Err("usage: backup_bench seed <copies> | backup".into()),
    }
    Ok(())
}
