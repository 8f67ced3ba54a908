//! No password, hash, token or key reaches the logs of a register, login, refresh and logout.
//! Its own test binary (process): the capturing subscriber is the global default, so no other
//! test's thread can race the callsite registration (which a thread-local `set_default` loses
//! when tests run in parallel).

mod common;

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use common::*;

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn no_password_hash_token_or_key_reaches_the_logs() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this binary");

    let s = stack().await;
    let name = random_name();
    let password = "unmistakable-Passw0rd-7f3a";
    let body = serde_json::json!({"username": name, "password": password});
    assert_eq!(post(&s.router, "/api/auth/register", &body.to_string(), &random_ip()).await.status, 201);
    let wrong = "another-Unmistakable-9c1d";
    assert_eq!(login(&s.router, &name, wrong, &random_ip()).await.status, 401);
    // A password typed into the username field: the failed login logs only a keyed hash of it.
    let typed = "Passw0rd-typed-as-username-5e2b";
    assert_eq!(login(&s.router, typed, "x", &random_ip()).await.status, 401);
    assert_eq!(login(&s.router, typed, "x", &random_ip()).await.status, 401);
    let res = login(&s.router, &name, password, &random_ip()).await;
    assert_eq!(res.status, 200);
    let access = res.body["access_token"].as_str().unwrap().to_string();
    let refresh = res.body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(me(&s.router, &access).await.status, 200);
    let res = post(&s.router, "/api/auth/refresh", &refresh_body(&refresh), &random_ip()).await;
    let refresh2 = res.body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(post(&s.router, "/api/auth/logout", &refresh_body(&refresh2), &random_ip()).await.status, 204);

    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE username = $1")
        .bind(&name)
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    let (key, _) = keys(&s.config);
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("login failed") && logs.contains("login succeeded"), "capture works:\n{logs}");
    // The two failures of the typed name carry the same hash, so they can still be counted.
    let hashes: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("login failed"))
        .filter_map(|l| l.split("username_hash=").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(hashes.len(), 3, "{logs}");
    assert_eq!(hashes[1], hashes[2]);
    assert_ne!(hashes[0], hashes[1]);
    let hash_tail = hash.rsplit('$').next().unwrap().to_string();
    for (what, secret) in [
        ("password", password.to_string()),
        ("wrong password", wrong.to_string()),
        ("password hash", hash_tail),
        ("access token", access.clone()),
        ("access token signature", access.rsplit('.').next().unwrap().to_string()),
        ("refresh token", refresh),
        ("rotated refresh token", refresh2),
        ("signing key", key.expose().to_string()),
        ("username typed on a failed login", typed.to_string()),
        ("case-folded username typed on a failed login", typed.to_lowercase()),
    ] {
        assert!(!logs.contains(&secret), "the {what} appears in the logs");
    }
}
