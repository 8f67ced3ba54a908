#!/usr/bin/env python3
"""Per warm invocation, the inclusive instructions of the entry points of each cost category, from
two callgrind profiles of infra/bench/warm.py (WARMUP and WARMUP+COUNT invocations):
  categories.py LO.out HI.out COUNT
Each category is the largest inclusive cost among the functions matching it (entry points nest:
the largest is the outermost), so the categories may overlap a little and need not sum to 100%."""
import importlib.util
import os
import re
import sys

spec = importlib.util.spec_from_file_location("warm", os.path.join(os.path.dirname(__file__), "warm.py"))
warm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(warm)

CATEGORIES = [
    ("event JSON in (lambda_runtime deserialize + lambda_http request)", r"^lambda_runtime::deserializer::deserialize$|^lambda_http::request::into_api_gateway_v2_request$"),
    ("response out (lambda_http into response, base64)", r"^<lambda_http::TransformResponse<R,E> as core::future::future::Future>::poll$"),
    ("runtime API client (hyper: next + response)", r"^hyper_util::client::legacy::client::Client<C,B>::send_request::\{\{closure\}\}$"),
    ("gzip (tower-http compression)", r"^<tower_http::compression::body::CompressionBody<B> as http_body::Body>::poll_frame$|^compression_codecs::gzip::encoder::GzipEncoder::new$"),
    ("GzipEncoder::new alone", r"^compression_codecs::gzip::encoder::GzipEncoder::new$"),
    ("tracing: fmt layer, events (JSON log lines)", r"^<tracing_subscriber::fmt::fmt_layer::Layer<S,N,E,W> as tracing_subscriber::layer::Layer<S>>::on_event$"),
    ("tracing: fmt layer, span creation (fields formatted)", r"^<tracing_subscriber::fmt::fmt_layer::Layer<S,N,E,W> as tracing_subscriber::layer::Layer<S>>::on_new_span$"),
    ("tracing: registry new_span + close", r"^<tracing_subscriber::registry::sharded::Registry as tracing_core::subscriber::Subscriber>::(new_span|try_close)$"),
    ("EMF metrics (shared::metrics::emit)", r"^shared::metrics::emit$"),
    ("JWT verify (jsonwebtoken::decode)", r"^jsonwebtoken::decoding::decode$"),
    ("account check (Services::check_account)", r"^shared::services::ServicesInner::check_account::\{\{closure\}\}$"),
    ("AuthUser extractor (JWT + account)", r"^<shared::auth::extract::AuthUser as axum_core::extract::FromRequestParts<S>>::from_request_parts::\{\{closure\}\}$"),
    ("Redis GET (cache.get_json)", r"^shared::cache::Cache::get_json::\{\{closure\}\}$"),
    ("SQL: data_version", r"^shared::catalog::data_version::\{\{closure\}\}$"),
    ("SQL: match_context (prediction context, opening odds folded in since issue 13 step 1)", r"^shared::predictions::models::match_context::\{\{closure\}\}$"),
    ("SQL: opening_odds (a statement of its own before step 1)", r"^shared::predictions::opening_odds::\{\{closure\}\}$"),
    ("health checks (database, cache)", r"^shared::health::check_(database|cache)::\{\{closure\}\}$"),
    ("sqlx fetch (all statements)", r"^<sqlx_core::.*fetch_many.*|^sqlx_core::pool::inner::PoolInner<DB>::acquire::\{\{closure\}\}$"),
    ("serde_json::to_writer / to_vec (responses)", r"^serde_json::ser::to_writer|^serde_json::ser::to_vec$"),
    ("malloc+free (libc)", r"^(malloc|free|_int_malloc|_int_free|realloc|_int_realloc|malloc_consolidate|calloc)$"),
    ("memcpy/memmove (libc)", r"^__mem(cpy|move)_avx_unaligned_erms$"),
]


def main():
    lo_f, hi_f, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    lo, hi = warm.annotate(lo_f, True), warm.annotate(hi_f, True)
    slo, shi = warm.annotate(lo_f, False), warm.annotate(hi_f, False)
    total = (warm.callgrind_total(hi_f) - warm.callgrind_total(lo_f)) / count
    per_fn = {}
    for k, v in hi.items():
        per_fn[k[1]] = max(per_fn.get(k[1], 0), (v - lo.get(k, 0)) / count)
    self_fn = {}
    for k, v in shi.items():
        self_fn[k[1]] = self_fn.get(k[1], 0) + (v - slo.get(k, 0)) / count
    print("total per warm invocation: %d instructions" % total)
    for name, pat in CATEGORIES:
        rx = re.compile(pat)
        if name.startswith(("malloc", "memcpy")):
            v = sum(c for f, c in self_fn.items() if rx.search(f))
        else:
            v = max([c for f, c in per_fn.items() if rx.search(f)] or [0])
        print("%9d %5.1f%%  %s" % (v, 100 * v / total, name))


if __name__ == "__main__":
    main()
