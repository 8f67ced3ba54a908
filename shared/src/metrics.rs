//! Metrics as CloudWatch embedded metric format (EMF) log lines, which Lambda ships to CloudWatch
//! Logs and CloudWatch turns into metrics with no API call on the request path. Names follow the
//! old Prometheus setup (`http_requests_total`, ...).
//!
//! Outside a request every data point is its own line. Inside one ([`request_scope`], entered by
//! the HTTP envelope) data points are kept and written with the request's own metrics as **one
//! document per request** ([`http_request`]): one `CloudWatchMetrics` directive per data point
//! (EMF allows several, each with its own dimensions), all sharing the document's members, so a
//! cached `GET /api/matches` writes one line, not three. A kept data point whose names would
//! clash with the document's (the same metric twice, a dimension with another value) is written
//! on a line of its own, so no value is lost or changed.

use std::{cell::RefCell, io::Write as _, sync::OnceLock, time::Duration};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "FootballPrediction";

static SERVICE: OnceLock<String> = OnceLock::new();

/// Names the service (function) that emits; called once in `main`.
pub fn init(service: &str) {
    let _ = SERVICE.set(service.to_string());
}

fn service() -> &'static str {
    SERVICE.get().map(String::as_str).unwrap_or("unknown")
}

/// A metric value with its CloudWatch unit.
#[derive(Debug, Clone, Copy)]
pub enum MetricValue {
    Count(f64),
    Seconds(f64),
    Milliseconds(f64),
    None(f64),
}

/// One data point: metrics measured with dimensions (plus `service`), i.e. one
/// `CloudWatchMetrics` directive of a document.
#[derive(Debug, Clone, Copy)]
pub struct Group<'a> {
    pub dimensions: &'a [(&'a str, &'a str)],
    pub metrics: &'a [(&'a str, MetricValue)],
}

/// A data point kept until the request's document is written.
#[derive(Debug)]
struct Kept {
    dimensions: Vec<(String, String)>,
    metrics: Vec<(String, MetricValue)>,
}

/// A kept data point's names borrowed back as a [`Group`]'s slices.
type Borrowed<'a> = (Vec<(&'a str, &'a str)>, Vec<(&'a str, MetricValue)>);

impl Kept {
    fn borrowed(&self) -> Borrowed<'_> {
        (
            self.dimensions.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
            self.metrics.iter().map(|(k, v)| (k.as_str(), *v)).collect(),
        )
    }
}

/// The data points of the request being handled on this task, not yet written.
struct Pending {
    request_id: String,
    kept: RefCell<Vec<Kept>>,
}

impl Drop for Pending {
    /// A request that ended without its document (its future dropped: a client gone, a timeout)
    /// still writes what it measured.
    fn drop(&mut self) {
        let kept = std::mem::take(self.kept.get_mut());
        if kept.is_empty() {
            return;
        }
        let now = chrono::Utc::now().timestamp_millis();
        let lines: Vec<String> = kept
            .iter()
            .map(|k| {
                let (d, m) = k.borrowed();
                render_with(&d, &m, now, &[("request_id", &self.request_id)])
            })
            .collect();
        write_lines(&lines);
    }
}

tokio::task_local! {
    static PENDING: Pending;
}

/// Runs `fut` as one request: the data points [`emit`]ted on its task are written with the
/// request's document by [`http_request`] (or, if it never comes, when the scope ends).
pub async fn request_scope<F: std::future::Future>(request_id: String, fut: F) -> F::Output {
    PENDING.scope(Pending { request_id, kept: RefCell::new(Vec::new()) }, fut).await
}

/// Emits one data point: `metrics` measured with `dimensions` (plus `service`). Inside a
/// [`request_scope`] it is kept for the request's document; elsewhere it is a line of its own,
/// which within a request id [`crate::http::request_id::scope`] carries `request_id` (a property,
/// not a dimension: CloudWatch Logs Insights finds the request's metrics, and no metric gets a
/// series per request).
pub fn emit(dimensions: &[(&str, &str)], metrics: &[(&str, MetricValue)]) {
    let kept = PENDING.try_with(|p| {
        p.kept.borrow_mut().push(Kept {
            dimensions: dimensions.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        })
    });
    if kept.is_ok() {
        return;
    }
    let now = chrono::Utc::now().timestamp_millis();
    let line = match crate::http::request_id::current() {
        Some(id) => render_with(dimensions, metrics, now, &[("request_id", &id)]),
        None => render(dimensions, metrics, now),
    };
    write_lines(&[line]);
}

/// Writes whole lines to stdout under one lock (lines of concurrent requests never interleave).
fn write_lines(lines: &[String]) {
    let mut out = std::io::stdout().lock();
    for line in lines {
        let _ = out.write_all(line.as_bytes());
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

/// The EMF document (separate from printing, for tests).
pub fn render(dimensions: &[(&str, &str)], metrics: &[(&str, MetricValue)], timestamp_ms: i64) -> String {
    render_with(dimensions, metrics, timestamp_ms, &[])
}

/// The EMF document with `properties`: top-level fields that are neither dimensions nor metrics.
///
/// Written straight into one `String` (issue 13: a `serde_json::Map` and `json!` values per
/// document were 40-70 k instructions of every request). A name given twice keeps one value, as
/// a JSON object must: a metric's over a dimension's over a property's.
pub fn render_with(
    dimensions: &[(&str, &str)],
    metrics: &[(&str, MetricValue)],
    timestamp_ms: i64,
    properties: &[(&str, &str)],
) -> String {
    render_groups(&[Group { dimensions, metrics }], timestamp_ms, properties)
}

/// One EMF document of several data points: one `CloudWatchMetrics` directive per group, the
/// members written once. Groups are meant to be [`fits`] together; where names still repeat, one
/// value is kept as in [`render_with`] (the last group's dimension, the last metric).
pub fn render_groups(groups: &[Group<'_>], timestamp_ms: i64, properties: &[(&str, &str)]) -> String {
    let dimensions = || groups.iter().flat_map(|g| g.dimensions.iter());
    let metrics = || groups.iter().flat_map(|g| g.metrics.iter());
    let is_metric = |k: &str| metrics().any(|(n, _)| *n == k);
    let is_dimension = |k: &str| k == "service" || dimensions().any(|(n, _)| *n == k);
    let mut out = String::with_capacity(320 * groups.len());
    out.push('{');
    for (k, v) in properties {
        if !is_metric(k) && !is_dimension(k) {
            push_field(&mut out, k, v);
        }
    }
    if !is_metric("service") {
        push_field(&mut out, "service", service());
    }
    for (i, (k, v)) in dimensions().enumerate() {
        let later = dimensions().skip(i + 1).any(|(n, _)| n == k);
        if *k != "service" && !later && !is_metric(k) {
            push_field(&mut out, k, v);
        }
    }
    for (i, (name, value)) in metrics().enumerate() {
        if metrics().skip(i + 1).any(|(n, _)| n == name) {
            continue;
        }
        push_string(&mut out, name);
        out.push(':');
        push_number(&mut out, value.value());
        out.push(',');
    }
    out.push_str("\"_aws\":{\"Timestamp\":");
    out.push_str(&timestamp_ms.to_string());
    out.push_str(",\"CloudWatchMetrics\":[");
    for (g, group) in groups.iter().enumerate() {
        if g > 0 {
            out.push(',');
        }
        out.push_str("{\"Namespace\":");
        push_string(&mut out, NAMESPACE);
        out.push_str(",\"Dimensions\":[[\"service\"");
        for (k, _) in group.dimensions {
            out.push(',');
            push_string(&mut out, k);
        }
        out.push_str("]],\"Metrics\":[");
        for (i, (name, value)) in group.metrics.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"Name\":");
            push_string(&mut out, name);
            out.push_str(",\"Unit\":\"");
            out.push_str(value.unit());
            out.push_str("\"}");
        }
        out.push_str("]}");
    }
    out.push_str("]}}");
    out
}

/// Whether `candidate` can join a document of `groups` and `properties` without changing any
/// value: each of its dimensions is new or has the same value there, and none of its names is
/// already a metric, a property or `service`; each of its metrics is a new name.
pub fn fits(groups: &[Group<'_>], properties: &[(&str, &str)], candidate: &Group<'_>) -> bool {
    let dimension = |k: &str| groups.iter().flat_map(|g| g.dimensions.iter()).find(|(n, _)| *n == k).map(|(_, v)| *v);
    let metric = |k: &str| groups.iter().any(|g| g.metrics.iter().any(|(n, _)| *n == k));
    let property = |k: &str| properties.iter().any(|(n, _)| *n == k);
    candidate.dimensions.iter().all(|(k, v)| {
        *k != "service" && !metric(k) && !property(k) && dimension(k).is_none_or(|existing| existing == *v)
    }) && candidate.metrics.iter().all(|(k, _)| *k != "service" && !metric(k) && !property(k) && dimension(k).is_none())
        && candidate.metrics.iter().all(|(k, _)| !candidate.dimensions.iter().any(|(n, _)| n == k))
}

impl MetricValue {
    fn unit(&self) -> &'static str {
        match self {
            MetricValue::Count(_) => "Count",
            MetricValue::Seconds(_) => "Seconds",
            MetricValue::Milliseconds(_) => "Milliseconds",
            MetricValue::None(_) => "None",
        }
    }

    fn value(&self) -> f64 {
        match *self {
            MetricValue::Count(v) | MetricValue::Seconds(v) | MetricValue::Milliseconds(v) | MetricValue::None(v) => v,
        }
    }
}

/// `"key":"value",`
fn push_field(out: &mut String, key: &str, value: &str) {
    push_string(out, key);
    out.push(':');
    push_string(out, value);
    out.push(',');
}

/// A JSON string: quotes, backslashes and control characters escaped (RFC 8259, section 7).
fn push_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// A JSON number (`null` for NaN and infinities, which JSON cannot write, as `serde_json` does).
fn push_number(out: &mut String, v: f64) {
    use std::fmt::Write;
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        out.push_str("null");
    }
}

/// `http_requests_total` and `http_request_duration_seconds` by method, route and status: the
/// request's one document, which also carries every data point the request kept (see the module
/// documentation) and `properties` (`request_id`, `trace_id`, ...). It is the access log line.
pub fn http_request(method: &str, route: &str, status: u16, elapsed: Duration, properties: &[(&str, &str)]) {
    let kept = PENDING.try_with(|p| std::mem::take(&mut *p.kept.borrow_mut())).unwrap_or_default();
    let now = chrono::Utc::now().timestamp_millis();
    write_lines(&request_lines(method, route, status, elapsed, properties, &kept, now));
}

/// The lines of a request: its document with the kept data points that fit, then those that do
/// not, each alone.
fn request_lines(
    method: &str,
    route: &str,
    status: u16,
    elapsed: Duration,
    properties: &[(&str, &str)],
    kept: &[Kept],
    timestamp_ms: i64,
) -> Vec<String> {
    let status = status.to_string();
    let dimensions = [("method", method), ("route", route), ("status", status.as_str())];
    let metrics = [
        ("http_requests_total", MetricValue::Count(1.0)),
        ("http_request_duration_seconds", MetricValue::Seconds(elapsed.as_secs_f64())),
    ];
    let borrowed: Vec<Borrowed<'_>> = kept.iter().map(Kept::borrowed).collect();
    let mut groups = vec![Group { dimensions: &dimensions, metrics: &metrics }];
    let mut alone = Vec::new();
    for (d, m) in &borrowed {
        let group = Group { dimensions: d, metrics: m };
        if fits(&groups, properties, &group) {
            groups.push(group);
        } else {
            alone.push(group);
        }
    }
    let request_id: Vec<(&str, &str)> = properties.iter().filter(|(k, _)| *k == "request_id").copied().collect();
    let mut lines = vec![render_groups(&groups, timestamp_ms, properties)];
    lines.extend(alone.iter().map(|g| render_groups(std::slice::from_ref(g), timestamp_ms, &request_id)));
    lines
}

/// A dependency failure (`database_errors_total`, `cache_errors_total`), for the alarms.
pub fn dependency_error(dependency: &str) {
    let name = match dependency {
        "database" => "database_errors_total",
        "cache" => "cache_errors_total",
        _ => "dependency_errors_total",
    };
    emit(&[("dependency", dependency)], &[(name, MetricValue::Count(1.0))]);
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn renders_valid_emf() {
        let line =
            render(&[("route", "/health")], &[("http_requests_total", MetricValue::Count(1.0))], 1_700_000_000_000);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["route"], "/health");
        assert_eq!(v["http_requests_total"], 1.0);
        let cwm = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cwm["Namespace"], NAMESPACE);
        assert_eq!(cwm["Dimensions"][0], json!(["service", "route"]));
        assert_eq!(cwm["Metrics"][0], json!({"Name": "http_requests_total", "Unit": "Count"}));
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000i64);
    }

    #[test]
    fn the_request_id_is_a_property_not_a_dimension() {
        let line = render_with(
            &[("route", "/health")],
            &[("http_requests_total", MetricValue::Count(1.0))],
            1,
            &[("request_id", "Hf3xWjyZoAMEVrw=")],
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["request_id"], "Hf3xWjyZoAMEVrw=");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0], json!(["service", "route"]));
    }

    #[test]
    fn the_written_document_is_the_json_of_the_values_escaped() {
        let odd = "a \"quoted\" \\ path\n\twith\u{1} control and ünïcode";
        let line = render_with(
            &[("route", odd), ("status", "200")],
            &[
                ("http_requests_total", MetricValue::Count(1.0)),
                ("http_request_duration_seconds", MetricValue::Seconds(0.000_123_4)),
                ("broken", MetricValue::None(f64::NAN)),
                ("elapsed", MetricValue::Milliseconds(1.5e3)),
            ],
            1_700_000_000_123,
            &[("request_id", odd)],
        );
        assert!(!line.contains('\n'), "one line: {line}");
        let v: Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(v["route"], odd);
        assert_eq!(v["request_id"], odd);
        assert_eq!(v["status"], "200");
        assert_eq!(v["service"], service());
        assert_eq!(v["http_request_duration_seconds"].as_f64(), Some(0.000_123_4));
        assert_eq!(v["elapsed"].as_f64(), Some(1500.0));
        assert!(v["broken"].is_null(), "NaN is not a JSON number: {line}");
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_123i64);
        let cwm = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cwm["Dimensions"], json!([["service", "route", "status"]]));
        assert_eq!(
            cwm["Metrics"],
            json!([
                {"Name": "http_requests_total", "Unit": "Count"},
                {"Name": "http_request_duration_seconds", "Unit": "Seconds"},
                {"Name": "broken", "Unit": "None"},
                {"Name": "elapsed", "Unit": "Milliseconds"},
            ])
        );
        // Every member once: the object has exactly these keys.
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 9, "{keys:?}");
    }

    fn kept(dimensions: &[(&str, &str)], metrics: &[(&str, MetricValue)]) -> Kept {
        Kept {
            dimensions: dimensions.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn a_request_is_one_document_with_the_data_points_it_kept() {
        let hit = kept(&[("kind", "matches")], &[("catalog_cache_hits_total", MetricValue::Count(1.0))]);
        let lines = request_lines(
            "GET",
            "/api/matches",
            200,
            Duration::from_millis(3),
            &[("request_id", "r-1"), ("trace_id", "Root=1-abc")],
            &[hit],
            7,
        );
        assert_eq!(lines.len(), 1, "{lines:?}");
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["request_id"], "r-1");
        assert_eq!(v["trace_id"], "Root=1-abc");
        assert_eq!(v["route"], "/api/matches");
        assert_eq!(v["status"], "200");
        assert_eq!(v["kind"], "matches");
        assert_eq!(v["http_requests_total"], 1.0);
        assert_eq!(v["http_request_duration_seconds"].as_f64(), Some(0.003));
        assert_eq!(v["catalog_cache_hits_total"], 1.0);
        let directives = v["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 2);
        assert_eq!(directives[0]["Dimensions"], json!([["service", "method", "route", "status"]]));
        assert_eq!(directives[1]["Dimensions"], json!([["service", "kind"]]));
        assert_eq!(directives[1]["Metrics"], json!([{"Name": "catalog_cache_hits_total", "Unit": "Count"}]));
    }

    #[test]
    fn a_kept_data_point_that_would_change_a_value_gets_a_line_of_its_own() {
        let first = kept(&[("kind", "matches")], &[("catalog_cache_hits_total", MetricValue::Count(1.0))]);
        let same_metric = kept(&[("kind", "teams")], &[("catalog_cache_hits_total", MetricValue::Count(1.0))]);
        let other_kind = kept(&[("kind", "teams")], &[("catalog_cache_misses_total", MetricValue::Count(1.0))]);
        let same_kind = kept(&[("kind", "matches")], &[("catalog_cache_misses_total", MetricValue::Count(1.0))]);
        let clashes_with_route = kept(&[("route", "/elsewhere")], &[("x_total", MetricValue::Count(2.0))]);
        let lines = request_lines(
            "GET",
            "/api/matches",
            200,
            Duration::from_millis(1),
            &[("request_id", "r-2"), ("client_request_id", "c")],
            &[first, same_metric, other_kind, same_kind, clashes_with_route],
            7,
        );
        let docs: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(docs.len(), 4, "{lines:?}");
        // The request's document: its own directive, the first hit and the same-kind miss.
        assert_eq!(docs[0]["kind"], "matches");
        assert_eq!(docs[0]["catalog_cache_misses_total"], 1.0);
        assert_eq!(docs[0]["_aws"]["CloudWatchMetrics"].as_array().unwrap().len(), 3);
        // The others alone, each with the request id and its own values unchanged.
        assert_eq!(docs[1]["kind"], "teams");
        assert_eq!(docs[1]["catalog_cache_hits_total"], 1.0);
        assert_eq!(docs[2]["kind"], "teams");
        assert_eq!(docs[2]["catalog_cache_misses_total"], 1.0);
        assert_eq!(docs[3]["route"], "/elsewhere");
        assert_eq!(docs[3]["x_total"], 2.0);
        for doc in &docs[1..] {
            assert_eq!(doc["request_id"], "r-2");
            assert!(doc.get("client_request_id").is_none(), "only the request's document carries it");
            assert_eq!(doc["_aws"]["CloudWatchMetrics"].as_array().unwrap().len(), 1);
        }
        // Every data point is counted once over all lines.
        let total = |name: &str| docs.iter().filter_map(|d| d[name].as_f64()).sum::<f64>();
        assert_eq!(total("catalog_cache_hits_total"), 2.0);
        assert_eq!(total("catalog_cache_misses_total"), 2.0);
        assert_eq!(total("http_requests_total"), 1.0);
    }

    #[tokio::test]
    async fn inside_a_request_data_points_wait_for_its_document() {
        request_scope("r-3".into(), async {
            emit(&[("kind", "matches")], &[("catalog_cache_hits_total", MetricValue::Count(1.0))]);
            emit(&[], &[("refresh_token_reuse_total", MetricValue::Count(1.0))]);
            assert_eq!(PENDING.with(|p| p.kept.borrow().len()), 2);
            http_request("GET", "/x", 200, Duration::ZERO, &[("request_id", "r-3")]);
            assert_eq!(PENDING.with(|p| p.kept.borrow().len()), 0, "written with the document");
        })
        .await;
        assert!(PENDING.try_with(|_| ()).is_err(), "outside a request nothing is kept");
    }

    #[test]
    fn a_name_given_twice_is_one_member_a_metric_before_a_dimension_before_a_property() {
        let line = render_with(
            &[("route", "/a"), ("kind", "dimension")],
            &[("kind", MetricValue::Count(2.0))],
            1,
            &[("route", "property"), ("request_id", "r")],
        );
        // serde_json keeps the last of duplicate keys: count them in the text itself.
        assert_eq!(line.matches("\"route\":").count(), 1, "{line}");
        assert_eq!(line.matches("\"kind\":").count(), 1, "{line}");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["route"], "/a");
        assert_eq!(v["kind"], 2.0);
        assert_eq!(v["request_id"], "r");
    }
}
