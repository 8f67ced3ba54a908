//! Metrics as CloudWatch embedded metric format (EMF) log lines: one JSON line per data point on
//! stdout, which Lambda ships to CloudWatch Logs and CloudWatch turns into metrics with no API call
//! on the request path. Names follow the old Prometheus setup (`http_requests_total`, ...).

use std::{sync::OnceLock, time::Duration};

use serde_json::{Map, Value, json};

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
pub fn render_with(
    dimensions: &[(&str, &str)],
    metrics: &[(&str, MetricValue)],
    timestamp_ms: i64,
    properties: &[(&str, &str)],
) -> String {
    let mut doc = Map::new();
    for (k, v) in properties {
        doc.insert((*k).into(), Value::from(*v));
    }
    let mut dim_names = vec![Value::from("service")];
    doc.insert("service".into(), Value::from(service()));
    for (k, v) in dimensions {
        dim_names.push(Value::from(*k));
        doc.insert((*k).into(), Value::from(*v));
    }
    let mut defs = Vec::new();
    for (name, value) in metrics {
        let (unit, v) = match value {
            MetricValue::Count(v) => ("Count", v),
            MetricValue::Seconds(v) => ("Seconds", v),
            MetricValue::Milliseconds(v) => ("Milliseconds", v),
            MetricValue::None(v) => ("None", v),
        };
        defs.push(json!({"Name": name, "Unit": unit}));
        doc.insert((*name).into(), json!(v));
    }
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [dim_names], "Metrics": defs}]
        }),
    );
    Value::Object(doc).to_string()
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
}
