//! A fake football-data.org serving the fixtures of tests/fixtures/football-data-org, and helpers.
#![allow(dead_code)]

use std::{
    collections::{HashMap, VecDeque},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Body, extract::Request, http::StatusCode, response::Response};
use ingest::Job;
use shared::{
    config::SecretSource,
    ingest::{IngestSettings, client::ClientOptions},
    secret::Secret,
};
use sqlx::PgPool;
use test_support::{TestDatabase, services};
use tokio::sync::{Notify, watch};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixture(name: &str) -> String {
    let path = root().join("tests/fixtures/football-data-org").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Reply {
    pub fn ok(fixture_name: &str) -> Self {
        Reply { status: 200, headers: vec![("X-Requests-Available-Minute", "9".into())], body: fixture(fixture_name) }
    }
    pub fn status(status: u16, fixture_name: &str) -> Self {
        Reply { status, headers: vec![], body: fixture(fixture_name) }
    }
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name, value.to_string()));
        self
    }
}

#[derive(Default)]
struct State {
    queued: HashMap<String, VecDeque<Reply>>,
    always: HashMap<String, Reply>,
    seen: Vec<(String, String, Option<String>)>,
}

/// Holds answers back while closed; says when a request arrives.
struct Gate {
    open: watch::Sender<bool>,
    arrived: Notify,
}

/// The fake API: per path, queued replies first, then the standing reply (404 when none).
#[derive(Clone)]
pub struct FakeApi(Arc<Mutex<State>>, Arc<Gate>);

impl Default for FakeApi {
    fn default() -> Self {
        Self(Arc::default(), Arc::new(Gate { open: watch::channel(true).0, arrived: Notify::new() }))
    }
}

impl FakeApi {
    pub fn always(&self, path: &str, reply: Reply) {
        self.0.lock().unwrap().always.insert(path.to_string(), reply);
    }
    pub fn then(&self, path: &str, reply: Reply) {
        self.0.lock().unwrap().queued.entry(path.to_string()).or_default().push_back(reply);
    }
    /// (path, query, X-Auth-Token) of every request so far.
    pub fn seen(&self) -> Vec<(String, String, Option<String>)> {
        self.0.lock().unwrap().seen.clone()
    }

    /// Requests from now on wait for [`FakeApi::release`] before they are answered.
    pub fn hold(&self) {
        self.1.open.send_replace(false);
    }
    pub fn release(&self) {
        self.1.open.send_replace(true);
    }
    /// Returns once a request has arrived (one that arrived before the call counts).
    pub async fn request_arrived(&self) {
        self.1.arrived.notified().await;
    }

    /// Serves on 127.0.0.1:0; returns the base URL.
    pub async fn serve(&self) -> String {
        let state = self.clone();
        let app = Router::new().fallback(move |req: Request| {
            let state = state.clone();
            async move {
                let response = state.answer(req);
                state.1.arrived.notify_one();
                let mut open = state.1.open.subscribe();
                let _ = open.wait_for(|open| *open).await;
                response
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        format!("http://{addr}")
    }

    fn answer(&self, req: Request) -> Response {
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let token = req.headers().get("x-auth-token").and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut s = self.0.lock().unwrap();
        s.seen.push((path.clone(), query, token));
        let reply = s.queued.get_mut(&path).and_then(VecDeque::pop_front).or_else(|| s.always.get(&path).cloned());
        let reply = reply.unwrap_or(Reply {
            status: 404,
            headers: vec![],
            body: r#"{"message": "The resource you are looking for does not exist.", "errorCode": 404}"#.into(),
        });
        let mut builder = Response::builder()
            .status(StatusCode::from_u16(reply.status).unwrap())
            .header("content-type", "application/json");
        for (k, v) in &reply.headers {
            builder = builder.header(*k, v);
        }
        builder.body(Body::from(reply.body)).unwrap()
    }
}

pub fn settings(base_url: &str) -> IngestSettings {
    IngestSettings {
        base_url: base_url.to_string(),
        token: Some(SecretSource::Plain(Secret::new("test-token"))),
        default_competitions: vec!["PL".into()],
        client: ClientOptions {
            max_attempts: 4,
            base_backoff: Duration::from_millis(50),
            max_wait: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            safety_margin: Duration::from_secs(1),
        },
    }
}

pub fn job(db: &TestDatabase, base_url: &str) -> Job {
    Job::new(services(db), settings(base_url))
}

/// Row counts and last-change times of everything the ingestion and the import write.
pub async fn snapshot(pool: &PgPool) -> serde_json::Value {
    sqlx::query_scalar(
        "SELECT json_build_object(
            'competitions', (SELECT count(*) FROM competitions), 'teams', (SELECT count(*) FROM teams),
            'team_aliases', (SELECT count(*) FROM team_aliases), 'matches', (SELECT count(*) FROM matches),
            'match_sources', (SELECT count(*) FROM match_sources), 'match_odds', (SELECT count(*) FROM match_odds),
            'matches_updated_at', (SELECT max(updated_at)::text FROM matches),
            'teams_updated_at', (SELECT max(updated_at)::text FROM teams),
            'odds_updated_at', (SELECT max(updated_at)::text FROM match_odds),
            'data_version', (SELECT coalesce(sum(data_version), 0)::bigint FROM competitions))::jsonb",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}
