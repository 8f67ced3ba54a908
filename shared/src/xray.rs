//! Spans to AWS X-Ray, the way Lambda expects them: each closed span of a traced request becomes
//! one X-Ray *subsegment* document sent over UDP to the X-Ray daemon that Lambda runs beside every
//! function with `Tracing: Active` (its address in `AWS_XRAY_DAEMON_ADDRESS`). The request's span
//! (`request`, whose `trace_id` is the invocation's trace header `Root=...;Parent=...;Sampled=1`)
//! hangs under the function's own segment (`Parent`); its inner spans (`db.*`, `redis.*`,
//! `dynamodb.*`, `s3.*`, `model.*`) hang under it. So the X-Ray console shows where a request spent
//! its time, call by call, with no OpenTelemetry collector layer and no extra crate: the documents
//! are the daemon's own JSON format, one datagram each, and a send that fails is dropped (tracing
//! must never fail or slow a request).
//!
//! Without `AWS_XRAY_DAEMON_ADDRESS` (tests, `fp`) the layer is not installed. Locally,
//! `infra/local/xray-listen.py` plays the daemon and prints each request's spans as a tree.

use std::{
    fmt::Write as _,
    net::{SocketAddr, ToSocketAddrs, UdpSocket},
    time::{SystemTime, UNIX_EPOCH},
};

use tracing::{
    Subscriber,
    field::{Field, Visit},
    span::{Attributes, Id, Record},
};
use tracing_subscriber::{Layer, layer::Context, registry::LookupSpan};

/// The field of the request span that holds the X-Ray trace header.
const TRACE_FIELD: &str = "trace_id";
/// What precedes every document sent to the daemon.
const HEADER: &str = "{\"format\":\"json\",\"version\":1}\n";

/// A trace header's parts that a subsegment needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeader {
    pub root: String,
    pub parent: Option<String>,
    pub sampled: bool,
}

impl TraceHeader {
    /// Parses `Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1` (any
    /// order, other keys such as `Lineage` ignored). None without a well-formed root.
    pub fn parse(header: &str) -> Option<Self> {
        let (mut root, mut parent, mut sampled) = (None, None, false);
        for part in header.split(';') {
            match part.trim().split_once('=') {
                Some(("Root", v)) if is_trace_id(v) => root = Some(v.to_string()),
                Some(("Parent", v)) if is_segment_id(v) => parent = Some(v.to_string()),
                Some(("Sampled", v)) => sampled = v == "1",
                _ => {}
            }
        }
        Some(Self { root: root?, parent, sampled })
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_segment_id(s: &str) -> bool {
    is_hex(s, 16)
}

fn is_trace_id(s: &str) -> bool {
    let mut parts = s.split('-');
    matches!((parts.next(), parts.next(), parts.next(), parts.next()),
        (Some("1"), Some(time), Some(random), None) if is_hex(time, 8) && is_hex(random, 24))
}

/// The daemon's UDP address from `AWS_XRAY_DAEMON_ADDRESS`: `host:port`, or the SDKs' form
/// `tcp:host:port udp:host:port` (the UDP one is used).
pub fn daemon_address(value: &str) -> Option<SocketAddr> {
    let udp = value.split_whitespace().find_map(|p| p.strip_prefix("udp:")).unwrap_or(value.trim());
    udp.to_socket_addrs().ok()?.next()
}

/// The layer, when this process runs beside an X-Ray daemon.
pub fn layer_from_env() -> Option<XrayLayer> {
    let address = daemon_address(&std::env::var("AWS_XRAY_DAEMON_ADDRESS").ok()?)?;
    XrayLayer::new(address).ok()
}

/// Sends each closed span of a sampled trace to the daemon as a subsegment.
pub struct XrayLayer {
    socket: UdpSocket,
}

impl XrayLayer {
    pub fn new(daemon: SocketAddr) -> std::io::Result<Self> {
        let bind: SocketAddr = if daemon.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("address");
        let socket = UdpSocket::bind(bind)?;
        socket.connect(daemon)?;
        socket.set_nonblocking(true)?;
        Ok(Self { socket })
    }
}

/// What the layer keeps on each span.
struct Timing {
    id: String,
    start: f64,
    /// Set on the span that carries the trace header (the request span).
    trace: Option<TraceHeader>,
}

struct TraceVisitor(Option<TraceHeader>);

impl Visit for TraceVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == TRACE_FIELD {
            self.0 = TraceHeader::parse(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == TRACE_FIELD {
            self.0 = TraceHeader::parse(format!("{value:?}").trim_matches('"'));
        }
    }
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

fn new_segment_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl<S> Layer<S> for XrayLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut visitor = TraceVisitor(None);
        attrs.record(&mut visitor);
        span.extensions_mut().insert(Timing { id: new_segment_id(), start: now(), trace: visitor.0 });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut visitor = TraceVisitor(None);
        values.record(&mut visitor);
        if let Some(trace) = visitor.0
            && let Some(timing) = span.extensions_mut().get_mut::<Timing>()
        {
            timing.trace = Some(trace);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let end = now();
        // The trace this span belongs to: its own header, or the nearest ancestor's; its parent:
        // the enclosing span's subsegment, or, for the span with the header, the function's segment.
        let mut trace = None;
        let mut parent_id = None;
        for (depth, s) in span.scope().enumerate() {
            let extensions = s.extensions();
            let Some(timing) = extensions.get::<Timing>() else { continue };
            if depth == 1 && parent_id.is_none() {
                parent_id = Some(timing.id.clone());
            }
            if let Some(t) = &timing.trace {
                if depth == 0 {
                    parent_id = t.parent.clone();
                }
                trace = Some(t.clone());
                break;
            }
        }
        let Some(trace) = trace.filter(|t| t.sampled) else { return };
        let extensions = span.extensions();
        let Some(timing) = extensions.get::<Timing>() else { return };
        let document = subsegment(span.name(), timing, end, &trace.root, parent_id.as_deref());
        let _ = self.socket.send(document.as_bytes());
    }
}

/// One subsegment document, header line included.
fn subsegment(name: &str, timing: &Timing, end: f64, root: &str, parent: Option<&str>) -> String {
    let mut doc = String::with_capacity(256);
    doc.push_str(HEADER);
    let mut body = serde_json::json!({
        "type": "subsegment",
        "name": xray_name(name),
        "id": timing.id,
        "trace_id": root,
        "start_time": timing.start,
        "end_time": end.max(timing.start),
    });
    if let Some(parent) = parent {
        body["parent_id"] = parent.into();
    }
    let namespace = match name.split('.').next() {
        Some("dynamodb" | "s3" | "secretsmanager") => Some("aws"),
        Some("db" | "redis") => Some("remote"),
        _ => None,
    };
    if let Some(namespace) = namespace {
        body["namespace"] = namespace.into();
    }
    let _ = write!(doc, "{body}");
    doc
}

/// X-Ray names allow letters, digits, whitespace and `_.:/%&#=+\-@`, up to 200 characters.
fn xray_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_alphanumeric() || c.is_whitespace() || "_.:/%&#=+\\-@".contains(c) { c } else { '_' })
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tracing_subscriber::prelude::*;

    use super::*;

    const HEADER_SAMPLED: &str =
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a:1";

    #[test]
    fn trace_headers_and_daemon_addresses_parse() {
        let t = TraceHeader::parse(HEADER_SAMPLED).unwrap();
        assert_eq!(t.root, "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(t.parent.as_deref(), Some("53995c3f42cd8ad8"));
        assert!(t.sampled);
        assert!(!TraceHeader::parse("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0").unwrap().sampled);
        assert_eq!(TraceHeader::parse("Parent=53995c3f42cd8ad8;Sampled=1"), None);
        assert_eq!(TraceHeader::parse("Root=2-x-y"), None);
        assert_eq!(daemon_address("127.0.0.1:2000"), Some("127.0.0.1:2000".parse().unwrap()));
        assert_eq!(
            daemon_address("tcp:169.254.79.129:2000 udp:169.254.79.129:2001"),
            Some("169.254.79.129:2001".parse().unwrap())
        );
        assert_eq!(daemon_address("nonsense"), None);
    }

    fn receive(socket: &UdpSocket) -> Vec<serde_json::Value> {
        let mut docs = Vec::new();
        let mut buf = [0u8; 65536];
        while let Ok(n) = socket.recv(&mut buf) {
            let text = std::str::from_utf8(&buf[..n]).unwrap();
            let (header, body) = text.split_once('\n').unwrap();
            assert_eq!(header, HEADER.trim_end());
            docs.push(serde_json::from_str(body).unwrap());
        }
        docs
    }

    #[test]
    fn a_sampled_request_sends_one_subsegment_per_span_nested_under_the_functions_segment() {
        let daemon = UdpSocket::bind("127.0.0.1:0").unwrap();
        daemon.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let subscriber = tracing_subscriber::registry().with(XrayLayer::new(daemon.local_addr().unwrap()).unwrap());
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!("request", trace_id = tracing::field::Empty, route = "/api/matches");
            request.record("trace_id", HEADER_SAMPLED);
            request.in_scope(|| {
                tracing::info_span!("db.list_matches").in_scope(|| {
                    tracing::info_span!("redis.get").in_scope(|| std::thread::sleep(Duration::from_millis(2)));
                });
                tracing::info_span!("dynamodb.get_item").in_scope(|| {});
            });
            drop(request);
            // A span outside any request, and a request that is not sampled: nothing is sent.
            tracing::info_span!("db.migrate").in_scope(|| {});
            let unsampled = tracing::info_span!("request", trace_id = tracing::field::Empty);
            unsampled.record("trace_id", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0");
            unsampled.in_scope(|| tracing::info_span!("db.get").in_scope(|| {}));
        });
        let docs = receive(&daemon);
        let names: Vec<&str> = docs.iter().map(|d| d["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["redis.get", "db.list_matches", "dynamodb.get_item", "request"]);
        let by_name = |n: &str| docs.iter().find(|d| d["name"] == n).unwrap();
        let (request, db, redis, ddb) =
            (by_name("request"), by_name("db.list_matches"), by_name("redis.get"), by_name("dynamodb.get_item"));
        for d in &docs {
            assert_eq!(d["type"], "subsegment");
            assert_eq!(d["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
            assert!(is_segment_id(d["id"].as_str().unwrap()), "{d}");
            assert!(d["end_time"].as_f64().unwrap() >= d["start_time"].as_f64().unwrap(), "{d}");
        }
        assert_eq!(request["parent_id"], "53995c3f42cd8ad8");
        assert_eq!(db["parent_id"], request["id"]);
        assert_eq!(ddb["parent_id"], request["id"]);
        assert_eq!(redis["parent_id"], db["id"]);
        assert_eq!((db["namespace"].as_str(), ddb["namespace"].as_str()), (Some("remote"), Some("aws")));
        assert!(redis["end_time"].as_f64().unwrap() - redis["start_time"].as_f64().unwrap() >= 0.002);
    }

    #[test]
    fn names_are_what_xray_accepts() {
        assert_eq!(xray_name("db.match_context"), "db.match_context");
        assert_eq!(xray_name("a<b>\"c"), "a_b__c");
        assert_eq!(xray_name(&"x".repeat(300)).len(), 200);
    }
}
