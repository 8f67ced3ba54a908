//! No input answers 5xx (issue 12, point 1). A property test drives the query parameters, path
//! ids and JSON bodies of every API route with arbitrary and edge-of-range values through the real
//! routers, against a real database (seeded with the demo league), Redis and the DynamoDB
//! emulator, and asserts that no answer is a 5xx. The two 500s that were observed are regression
//! cases of their own.

use axum::{Router, body::Body, http::Request};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use proptest::{
    prelude::*,
    test_runner::{Config as ProptestConfig, TestCaseError, TestRunner},
};
use test_support::{TestDatabase, TestResponse, send};

struct Api {
    auth: Router,
    matches: Router,
    predictions: Router,
    admin: Router,
    user_token: String,
    admin_token: String,
}

async fn api() -> (TestDatabase, Api) {
    let db = TestDatabase::new().await;
    shared::demo::seed(&db.pool, shared::config::Environment::Local, chrono::Utc::now()).await.expect("demo seed");
    let services = test_support::services(&db);
    let auth = auth::router(services.clone());
    let login = |name: &'static str| {
        let auth = auth.clone();
        async move {
            let body = serde_json::json!({"username": name, "password": "test_password"}).to_string();
            let res = send(&auth, post_json("/api/auth/login", &body, None, &random_ip())).await;
            assert_eq!(res.status, 200, "{}", res.text);
            res.body["access_token"].as_str().unwrap().to_string()
        }
    };
    let user_token = login("test_user").await;
    let admin_token = login("test_admin").await;
    let api = Api {
        auth,
        matches: matches::router(services.clone()),
        predictions: predictions::router(services.clone()),
        admin: admin::router(services),
        user_token,
        admin_token,
    };
    (db, api)
}

fn random_ip() -> String {
    let n = uuid::Uuid::new_v4().as_u128();
    format!("10.{}.{}.{}", (n >> 16) as u8, (n >> 8) as u8, n as u8)
}

fn post_json(uri: &str, body: &str, token: Option<&str>, ip: &str) -> Request<Body> {
    let mut b = Request::post(uri).header("content-type", "application/json").header("x-forwarded-for", ip);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::from(body.to_string())).unwrap()
}

fn request(method: &str, uri: &str, token: &str, body: Option<String>) -> Request<Body> {
    let b = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("x-forwarded-for", random_ip());
    b.body(body.map_or_else(Body::empty, Body::from)).unwrap()
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v {
            s.append_pair(k, v);
        }
    }
    s.finish()
}

/// A query or body value: arbitrary text, numbers of any size, dates with any year, timestamps,
/// cursors that decode to any position, ids, and the values the API does accept.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,12}",
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        (-300_000i32..300_000, 0u32..14, 0u32..33).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        (-300_000i32..300_000, 0u32..25, -24i32..25)
            .prop_map(|(y, h, z)| format!("{y:+05}-06-15T{h:02}:00:00{z:+03}:00")),
        (any::<i64>(), any::<i64>()).prop_map(|(t, id)| format!("v1.{t}.{id}")),
        (-1_000_000_000_000_000i64..1_000_000_000_000_000).prop_map(|t| format!("v1.{t}.1")),
        // the grammar of the cursors before issue 16 (base64url of `v1:<t>:<id>`)
        (any::<i64>(), any::<i64>()).prop_map(|(t, id)| URL_SAFE_NO_PAD.encode(format!("v1:{t}:{id}"))),
        (prop_oneof![Just("match_"), Just("team_"), Just("pred_"), Just("user_")], any::<i64>())
            .prop_map(|(p, n)| format!("{p}{n}")),
        prop_oneof![
            Just("PL".to_string()),
            Just("DEMO".to_string()),
            Just("FINISHED,TIMED".to_string()),
            Just("statistical".to_string()),
            Just("2024-08-16".to_string()),
            Just("match_1".to_string()),
            Just("team_1".to_string()),
            Just("user_1".to_string()),
            Just("\u{0}".to_string()),
        ],
    ]
}

fn opt() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(0.7, value())
}

/// Any JSON value, nested a little.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        value().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..3)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body with the route's own fields (each absent, of the right type or of any other) and
/// sometimes an unknown one.
fn body(fields: &'static [&'static str]) -> impl Strategy<Value = String> {
    let field = prop_oneof![3 => value().prop_map(serde_json::Value::from), 1 => json()];
    (prop::collection::vec(prop::option::weighted(0.8, field), fields.len()), prop::option::of(json())).prop_map(
        move |(values, extra)| {
            let mut map = serde_json::Map::new();
            for (name, v) in fields.iter().zip(values) {
                if let Some(v) = v {
                    map.insert((*name).to_string(), v);
                }
            }
            if let Some(extra) = extra {
                map.insert("extra".into(), extra);
            }
            serde_json::Value::Object(map).to_string()
        },
    )
}

#[derive(Debug, Clone)]
enum Call {
    Matches(Vec<Option<String>>),
    Match(String),
    Teams(Option<String>),
    Predictions(Vec<Option<String>>),
    Prediction(String),
    CreatePrediction(String),
    Users(Vec<Option<String>>),
    PatchUser(String, String),
    Login(String),
    Register(String),
    Refresh(String),
    Logout(String),
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        4 => prop::collection::vec(opt(), 7).prop_map(Call::Matches),
        1 => value().prop_map(Call::Match),
        1 => opt().prop_map(Call::Teams),
        3 => prop::collection::vec(opt(), 4).prop_map(Call::Predictions),
        1 => value().prop_map(Call::Prediction),
        2 => body(&["match_id", "strategy_type"]).prop_map(Call::CreatePrediction),
        2 => prop::collection::vec(opt(), 2).prop_map(Call::Users),
        2 => (value(), body(&["role", "is_active"])).prop_map(|(id, b)| Call::PatchUser(id, b)),
        2 => body(&["username", "password"]).prop_map(Call::Login),
        1 => body(&["username", "password", "email"]).prop_map(Call::Register),
        1 => body(&["refresh_token"]).prop_map(Call::Refresh),
        1 => body(&["refresh_token"]).prop_map(Call::Logout),
    ]
}

fn segment(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>().replace('+', "%20")
}

async fn run(api: &Api, call: &Call) -> TestResponse {
    let (u, a) = (api.user_token.as_str(), api.admin_token.as_str());
    match call {
        Call::Matches(v) => {
            let names = ["competition", "team", "status", "date_from", "date_to", "limit", "cursor"];
            let pairs: Vec<(&str, Option<String>)> = names.iter().copied().zip(v.iter().cloned()).collect();
            send(&api.matches, request("GET", &format!("/api/matches?{}", query(&pairs)), u, None)).await
        }
        Call::Match(id) => send(&api.matches, request("GET", &format!("/api/matches/{}", segment(id)), u, None)).await,
        Call::Teams(c) => {
            send(&api.matches, request("GET", &format!("/api/teams?{}", query(&[("competition", c.clone())])), u, None))
                .await
        }
        Call::Predictions(v) => {
            let names = ["match_id", "strategy_type", "limit", "cursor"];
            let pairs: Vec<(&str, Option<String>)> = names.iter().copied().zip(v.iter().cloned()).collect();
            send(&api.predictions, request("GET", &format!("/api/predictions?{}", query(&pairs)), u, None)).await
        }
        Call::Prediction(id) => {
            send(&api.predictions, request("GET", &format!("/api/predictions/{}", segment(id)), u, None)).await
        }
        Call::CreatePrediction(b) => {
            send(&api.predictions, request("POST", "/api/predictions", u, Some(b.clone()))).await
        }
        Call::Users(v) => {
            let pairs: Vec<(&str, Option<String>)> =
                ["limit", "cursor"].iter().copied().zip(v.iter().cloned()).collect();
            send(&api.admin, request("GET", &format!("/api/admin/users?{}", query(&pairs)), a, None)).await
        }
        Call::PatchUser(id, b) => {
            send(&api.admin, request("PATCH", &format!("/api/admin/users/{}", segment(id)), a, Some(b.clone()))).await
        }
        Call::Login(b) => send(&api.auth, post_json("/api/auth/login", b, None, &random_ip())).await,
        Call::Register(b) => send(&api.auth, post_json("/api/auth/register", b, None, &random_ip())).await,
        Call::Refresh(b) => send(&api.auth, post_json("/api/auth/refresh", b, None, &random_ip())).await,
        Call::Logout(b) => send(&api.auth, post_json("/api/auth/logout", b, None, &random_ip())).await,
    }
}

#[test]
fn no_query_parameter_path_id_or_body_answers_5xx() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (_db, api) = rt.block_on(api());
    let cases = std::env::var("HOSTILE_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(160);
    let mut runner = TestRunner::new(ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() });
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    let result = runner.run(&call(), |c| {
        let res = rt.block_on(run(&api, &c));
        *statuses.borrow_mut().entry(res.status).or_default() += 1;
        if res.status >= 500 {
            return Err(TestCaseError::fail(format!("{c:?} -> {} {}", res.status, res.text)));
        }
        if res.status == 400 && res.body["error"]["message"].as_str().is_none_or(str::is_empty) {
            return Err(TestCaseError::fail(format!("{c:?} -> 400 without a message: {}", res.text)));
        }
        Ok(())
    });
    println!("statuses over {cases} cases: {:?}", statuses.borrow());
    result.unwrap();
}

#[tokio::test]
async fn the_two_observed_500s_are_400s_naming_the_field() {
    let (_db, api) = api().await;
    let res = send(&api.matches, request("GET", "/api/matches?date_from=-9999-01-01", &api.user_token, None)).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.body["error"]["message"].as_str().unwrap().starts_with("date_from:"), "{}", res.text);

    for cursor in [URL_SAFE_NO_PAD.encode("v1:-300000000000000000:1"), "v1.-300000000000000000.1".to_string()] {
        let res =
            send(&api.predictions, request("GET", &format!("/api/predictions?cursor={cursor}"), &api.user_token, None))
                .await;
        assert_eq!(res.status, 400, "{}", res.text);
        assert!(res.body["error"]["message"].as_str().unwrap().starts_with("cursor:"), "{}", res.text);
    }

    // A NUL in a login's username reached PostgreSQL (which refuses it in `text`).
    let res =
        send(&api.auth, post_json("/api/auth/login", r#"{"username":"a\u0000","password":"x"}"#, None, "10.9.9.9"))
            .await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.body["error"]["message"].as_str().unwrap().starts_with("username:"), "{}", res.text);
    let res = send(&api.matches, request("GET", "/api/teams?competition=%00", &api.user_token, None)).await;
    assert_eq!(res.status, 400, "{}", res.text);
}
