//! `fp db ...`: the schema and the demo data of a database named by `DATABASE_URL`.

use anyhow::Context;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply the migrations in shared/migrations (idempotent).
    Migrate,
    /// Load the demo league and the users test_user / test_admin (only with ENVIRONMENT=local).
    SeedDemo,
}

pub async fn run(command: DbCommand) -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL").context("DATABASE_URL is required")?;
    let pool = sqlx::PgPool::connect(&url).await.context("cannot connect to DATABASE_URL")?;
    match command {
        DbCommand::Migrate => {
            shared::db::MIGRATOR.run(&pool).await.context("migrations failed")?;
            let applied: i64 =
                sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM _sqlx_migrations"#).fetch_one(&pool).await?;
            println!("[fp] migrations applied: {applied}");
        }
        DbCommand::SeedDemo => {
            let environment = std::env::var("ENVIRONMENT")
                .context("ENVIRONMENT is required")?
                .parse()
                .map_err(|e: String| anyhow::anyhow!("ENVIRONMENT: {e}"))?;
            let progress = shared::progress::for_stderr();
            let seeded =
                shared::demo::seed_with_progress(&pool, environment, chrono::Utc::now(), progress.as_ref()).await?;
            println!(
                "[fp] demo data: {} teams, {} matches, {} odds, {} users added",
                seeded.teams, seeded.matches, seeded.odds, seeded.users
            );
        }
    }
    Ok(())
}
