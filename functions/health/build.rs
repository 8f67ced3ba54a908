//! The /docs page bundles the Swagger UI assets that `npm ci` installs from the pinned
//! `docs-ui/package-lock.json` (integrity hashes checked by npm). `infra/local/stack.sh services`
//! (run by `make dev`, `make up`, `make test` and `.ci/run`) does it before any cargo build; a
//! build without it stops here, saying what to run.

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs-ui");
    println!("cargo:rerun-if-changed=docs-ui/package-lock.json");
    println!("cargo:rerun-if-changed=docs-ui/docs.js");
    println!("cargo:rerun-if-changed=docs-ui/node_modules/swagger-ui-dist/package.json");
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"] {
        let path = dir.join("node_modules/swagger-ui-dist").join(asset);
        if !path.exists() {
            panic!(
                "{} is missing: run `npm ci --ignore-scripts` in functions/health/docs-ui \
                 (or `infra/local/stack.sh services`, which does it)",
                path.display()
            );
        }
    }
}
