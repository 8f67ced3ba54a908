//! `fp-sqlx-migrate`: applies `shared/migrations` to the database of `DATABASE_URL`, as
//! `fp db migrate` does (the same embedded migrator, `sqlx::migrate!`), from a binary that does
//! not link the domain crate.
//!
//! Why it exists: every query of the domain crate is checked at compile time, against `.sqlx/`
//! (offline) or a live database. `make sqlx-prepare` regenerates `.sqlx/` against a database
//! that must first have the schema; when `.sqlx/` is stale (a new query, a new migration) `fp`
//! cannot be built to migrate that database, but this binary can: it has no checked query.

use anyhow::Context;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL").context("DATABASE_URL is required")?;
    let pool = sqlx::PgPool::connect(&url).await.context("cannot connect to DATABASE_URL")?;
    let migrator = sqlx::migrate!("../../shared/migrations");
    migrator.run(&pool).await.context("migrations failed")?;
    println!("[sqlx-migrate] migrations in shared/migrations: {}, all applied", migrator.iter().count());
    Ok(())
}
