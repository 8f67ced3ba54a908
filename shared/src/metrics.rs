//! Metrics as CloudWatch embedded metric format (EMF) log lines: one JSON line per data point on
//! stdout, which Lambda ships to CloudWatch Logs and CloudWatch turns into metrics with no API call
//! on the request path. Names follow the old Prometheus setup (`http_requests_total`, ...).

use std::{sync::OnceLock, time::Duration};

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

/// Emits one EMF line: `metrics` measured with `dimensions` (plus `service`). Within a request
/// the document also carries its `request_id` (a property, not a dimension: CloudWatch Logs
/// Insights finds the request's metrics, and no metric gets a series per request).
pub fn emit(dimensions: &[(&str, &str)], metrics: &[(&str, MetricValue)]) {
    let now = chrono::Utc::now().timestamp_millis();
    let line = match crate::http::request_id::current() {
        Some(id) => render_with(dimensions, metrics, now, &[("request_id", &id)]),
        None => render(dimensions, metrics, now),
    };
    println!("{line}");
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
    let is_metric = |k: &str| metrics.iter().any(|(n, _)| *n == k);
    let is_dimension = |k: &str| k == "service" || dimensions.iter().any(|(n, _)| *n == k);
    let mut out = String::with_capacity(320);
    out.push('{');
    for (k, v) in properties {
        if !is_metric(k) && !is_dimension(k) {
            push_field(&mut out, k, v);
        }
    }
    if !is_metric("service") {
        push_field(&mut out, "service", service());
    }
    for (i, (k, v)) in dimensions.iter().enumerate() {
        let later = dimensions[i + 1..].iter().any(|(n, _)| n == k);
        if *k != "service" && !later && !is_metric(k) {
            push_field(&mut out, k, v);
        }
    }
    for (i, (name, value)) in metrics.iter().enumerate() {
        if metrics[i + 1..].iter().any(|(n, _)| n == name) {
            continue;
        }
        push_string(&mut out, name);
        out.push(':');
        push_number(&mut out, value.value());
        out.push(',');
    }
    out.push_str("\"_aws\":{\"Timestamp\":");
    out.push_str(&timestamp_ms.to_string());
    out.push_str(",\"CloudWatchMetrics\":[{\"Namespace\":");
    push_string(&mut out, NAMESPACE);
    out.push_str(",\"Dimensions\":[[\"service\"");
    for (k, _) in dimensions {
        out.push(',');
        push_string(&mut out, k);
    }
    out.push_str("]],\"Metrics\":[");
    for (i, (name, value)) in metrics.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"Name\":");
        push_string(&mut out, name);
        out.push_str(",\"Unit\":\"");
        out.push_str(value.unit());
        out.push_str("\"}");
    }
    out.push_str("]}]}}");
    out
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

/// `http_requests_total` and `http_request_duration_seconds` by method, route and status.
pub fn http_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let status = status.to_string();
    emit(
        &[("method", method), ("route", route), ("status", &status)],
        &[
            ("http_requests_total", MetricValue::Count(1.0)),
            ("http_request_duration_seconds", MetricValue::Seconds(elapsed.as_secs_f64())),
        ],
    );
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
