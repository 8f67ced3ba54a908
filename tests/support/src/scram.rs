//! A PostgreSQL server of the test's own that really checks passwords (SCRAM-SHA-256 for every
//! role but `postgres`), for tests of credentials that rotate. The machine's server trusts
//! 127.0.0.1, so a changed password could not fail there; its configuration is not ours to edit.
//! initdb + pg_ctl in a temporary directory, on a free port; stopped and removed on drop.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

pub struct ScramServer {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

impl ScramServer {
    /// Starts a fresh server. `postgres` connects without a password from 127.0.0.1 (the test's
    /// admin); every other role must give its password.
    pub fn start() -> Self {
        let bin = pg_bin();
        let dir = std::env::temp_dir().join(format!("fp-scram-{}", uuid::Uuid::new_v4().simple()));
        let data = dir.join("data");
        std::fs::create_dir_all(&dir).expect("temp dir");
        as_postgres_owner(&dir);
        run(as_postgres(&bin.join("initdb"))
            .args(["-D", data.to_str().unwrap(), "-U", "postgres", "-E", "UTF8", "--auth=scram-sha-256"])
            .arg("--auth-local=trust"));
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
        )
        .expect("pg_hba.conf");
        let port = free_port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c password_encryption=scram-sha-256",
            dir.display()
        );
        run(as_postgres(&bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap(), "-l", dir.join("server.log").to_str().unwrap(), "-w", "-t", "60"])
            .args(["-o", &opts, "start"]));
        Self { port, dir, bin }
    }

    /// The admin's URL (database `postgres`).
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for ScramServer {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn pg_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()?.parse::<u32>().ok()));
    if let Some(newest) = found.pop() {
        return newest;
    }
    let out = Command::new("pg_config").arg("--bindir").output().expect("PostgreSQL server binaries (initdb, pg_ctl)");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// PostgreSQL refuses to run as root: as root, run its tools as `postgres`.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn as_postgres_owner(dir: &Path) {
    if is_root() {
        run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir));
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}
