// `sqlx::migrate!("./migrations")` (db::MIGRATOR) embeds the files it finds when the crate is
// compiled, and cargo does not watch that folder: without this, a new migration reaches neither
// the binaries nor the compile-time checked queries (which are expanded again with the crate)
// until something else in the crate changes.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
