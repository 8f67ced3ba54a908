//! gzip of response bodies, for clients that accept it, with one deflate state per thread reused
//! from response to response (issue 13).
//!
//! tower-http's `CompressionLayer` built a new miniz_oxide compressor for every response: about
//! 300 KB of tables allocated (glibc `mmap`s blocks that large, and unmaps them on free) and
//! initialised, 18% of a warm `GET /api/matches`, before a byte was compressed; and it compressed
//! at level 6. Here the state lives in a thread-local and is reset, not rebuilt, and the level is
//! the fastest (a page of 50 matches: 17 KB to about 2.3 KB instead of 1.8 KB). The compressed
//! bodies of the last few responses are remembered ([`gzip_memo`]): a cached page is the same
//! bytes for every request, and is compressed once.
//!
//! Same contract as the layer it replaces: `Accept-Encoding` with `gzip` (or `*`) at a non-zero
//! q-value; a complete body (exact size) of at least [`MIN_BYTES`]; not already encoded; not an
//! image (but SVG), gRPC or an event stream. The response then has `Content-Encoding: gzip`,
//! `Vary: Accept-Encoding` and no `Content-Length` / `Accept-Ranges`.

use std::cell::RefCell;

use axum::{
    body::{Body, Bytes, HttpBody as _},
    extract::Request,
    http::{HeaderMap, HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Bodies smaller than this are sent as they are.
pub const MIN_BYTES: u64 = 1024;

/// The compressed bodies remembered per thread ([`gzip_memo`]), and the largest body remembered.
const MEMO_ENTRIES: usize = 8;
const MEMO_MAX_BYTES: usize = 256 * 1024;

thread_local! {
    static DEFLATE: RefCell<Compress> = RefCell::new(Compress::new(Compression::fast(), false));
    static MEMO: RefCell<Vec<(Bytes, Bytes)>> = const { RefCell::new(Vec::new()) };
}

/// The middleware: compresses the response when the request accepts gzip and the body is worth it.
pub async fn compress(request: Request, next: Next) -> Response {
    let accepts = accepts_gzip(request.headers());
    let response = next.run(request).await;
    if !accepts || !compressible(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        // a body that fails to read (none of these functions streams one): the contract's 500
        Err(e) => return super::ApiError::internal(format!("response body: {e}")).into_response(),
    };
    let gz = gzip_memo(bytes);
    parts.headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts.headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::ACCEPT_RANGES);
    Response::from_parts(parts, Body::from(gz))
}

/// Whether `Accept-Encoding` lets us answer gzip (`gzip` or `*`, q-value above 0).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            if !(coding.eq_ignore_ascii_case("gzip") || coding == "*") {
                return false;
            }
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            q > 0.0
        },
    )
}

fn compressible(response: &Response) -> bool {
    let headers = response.headers();
    if headers.contains_key(header::CONTENT_ENCODING) {
        return false;
    }
    if let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        let ct = ct.to_ascii_lowercase();
        if (ct.starts_with("image/") && !ct.starts_with("image/svg+xml"))
            || ct.starts_with("application/grpc")
            || ct.starts_with("text/event-stream")
        {
            return false;
        }
    }
    // only a complete body of known size (every response of these functions), and a big one
    matches!(response.body().size_hint().exact(), Some(n) if n >= MIN_BYTES)
}

/// [`gzip`] of `data`, from this thread's memory when the same body was compressed lately: a
/// cached read (the same page of matches for 30 s) is compressed once per instance, not per
/// request. Bodies are compared byte for byte (same length first), the last [`MEMO_ENTRIES`] kept.
pub fn gzip_memo(data: Bytes) -> Bytes {
    if data.len() > MEMO_MAX_BYTES {
        return gzip(&data).into();
    }
    let hit = MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        let i = memo.iter().position(|(plain, _)| plain.len() == data.len() && plain[..] == data[..])?;
        let entry = memo.remove(i);
        let gz = entry.1.clone();
        memo.push(entry);
        Some(gz)
    });
    if let Some(gz) = hit {
        return gz;
    }
    let gz = Bytes::from(gzip(&data));
    MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        if memo.len() >= MEMO_ENTRIES {
            memo.remove(0);
        }
        memo.push((data, gz.clone()));
    });
    gz
}

/// `data` as a gzip member (RFC 1952): header, raw deflate at the fastest level, CRC-32 and size.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 3 + 64);
    // magic, deflate, no flags, no mtime, no extra flags, OS unknown
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    DEFLATE.with(|cell| {
        let mut deflate = cell.borrow_mut();
        deflate.reset();
        loop {
            let consumed = deflate.total_in() as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.len().max(1024));
            }
            match deflate.compress_vec(&data[consumed..], &mut out, FlushCompress::Finish) {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {}
                Err(e) => unreachable!("deflate of an in-memory buffer cannot fail: {e}"),
            }
        }
    });
    let mut crc = Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn round_trips_through_a_standard_decoder_many_times_on_one_state() {
        for n in [0usize, 1, 1000, 17_000, 300_000] {
            let data: Vec<u8> = (0..n).map(|i| b"{\"id\":\"match_12\",\"status\":\"TIMED\"}"[i % 34]).collect();
            let gz = gzip(&data);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
            assert_eq!(back, data, "{n} bytes");
            if n >= 1000 {
                assert!(gz.len() * 4 < data.len(), "{n}: {}", gz.len());
            }
        }
    }

    #[test]
    fn the_memo_answers_the_same_bytes_and_only_for_the_same_body() {
        let a = Bytes::from(vec![b'a'; 5000]);
        let b = Bytes::from(vec![b'b'; 5000]);
        let ga = gzip_memo(a.clone());
        assert_eq!(gzip_memo(a.clone()), ga);
        let gb = gzip_memo(b.clone());
        assert_ne!(ga, gb, "same length, other bytes");
        for i in 0..(MEMO_ENTRIES * 2) {
            let _ = gzip_memo(Bytes::from(vec![b'x'; 2000 + i]));
        }
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gzip_memo(b)[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, vec![b'b'; 5000], "evicted, compressed again");
    }

    #[test]
    fn accept_encoding_is_read_as_rfc_9110_says() {
        let accepts = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, v.parse().unwrap());
            accepts_gzip(&h)
        };
        assert!(accepts("gzip"));
        assert!(accepts("gzip, deflate"));
        assert!(accepts("br;q=1.0, GZIP;q=0.5"));
        assert!(accepts("*"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("deflate, br"));
        assert!(!accepts("identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
