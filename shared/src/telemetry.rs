//! Logs: `tracing` set up the way Lambda wants it.
//!
//! With `AWS_LAMBDA_LOG_FORMAT=JSON` (the function's `LoggingConfig` in the template) every line is
//! one JSON object that CloudWatch Logs Insights can query; otherwise compact text for a terminal.
//! The level comes from `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`, default `info`. Secrets never
//! reach a field: they are [`crate::secret::Secret`]s, whose `Debug`/`Display` print `[redacted]`.
//!
//! Traces: every database, Redis and AWS call and the model work run in a span of their own
//! (`db.*`, `redis.*`, `dynamodb.*`, `s3.*`, `secretsmanager.*`, `model.*`) inside the request's
//! span, whose `trace_id` is the invocation's X-Ray trace id (and the runtime's `Lambda runtime
//! invoke` span carries `xrayTraceId`), so every log line of a request names its trace. With
//! `LOG_SPANS=close` each span also logs one line when it ends, with its busy and idle time:
//! where a slow request spent its time, locally or in CloudWatch. Where `AWS_XRAY_DAEMON_ADDRESS`
//! is set (Lambda with `Tracing: Active`), each span of a sampled request is also sent to X-Ray as
//! a subsegment ([`crate::xray`]).

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global subscriber once; later calls are no-ops (tests call it freely).
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into())
        .to_lowercase();
    // Quiet the chatty dependencies unless asked otherwise.
    let filter = EnvFilter::try_new(format!(
        "{level},hyper=warn,h2=warn,rustls=warn,aws_smithy_runtime=warn,aws_config=warn,sqlx=warn"
    ))
    .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let span_events = if std::env::var("LOG_SPANS").is_ok_and(|v| v.eq_ignore_ascii_case("close")) {
        fmt::format::FmtSpan::CLOSE
    } else {
        fmt::format::FmtSpan::NONE
    };
    // Beside an X-Ray daemon (Lambda with `Tracing: Active`), each span of a sampled request is
    // also an X-Ray subsegment (crate::xray).
    let registry = tracing_subscriber::registry().with(filter).with(crate::xray::layer_from_env());
    let result = if json {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(true)
                    .with_target(false)
                    .with_ansi(false)
                    .with_span_events(span_events),
            )
            .try_init()
    } else {
        registry
            .with(fmt::layer().compact().with_target(false).with_ansi(false).with_span_events(span_events))
            .try_init()
    };
    let _ = result;
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        log_panics();
    }
}

/// Under Lambda, a panic becomes one log line through `tracing` (so, inside a request, it carries
/// the request's `request_id`) naming where it happened, and nothing of its message: the payload
/// may quote request data. The catch-panic layer then answers the contract's opaque 500 and the
/// process goes on serving (the release profile unwinds). Tests keep Rust's default hook.
fn log_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            tracing::error!(panic_location = %location, "panicked");
        }));
    });
}
