// `sqlx::migrate!` embeds the migrations it finds at compile time and cargo does not watch their
// folder: rebuild when it changes, or a new migration would not be applied.
fn main() {
    println!("cargo:rerun-if-changed=../../shared/migrations");
}
