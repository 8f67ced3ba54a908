//! The football-data.org v4 HTTP client: `X-Auth-Token`, the plan's rate limit read from the
//! response headers, bounded retries with jitter on 429 / 5xx / network errors, and a deadline
//! that no wait or request may cross.

use std::time::Duration;

use rand::Rng;
use serde::de::DeserializeOwned;
use tokio::{sync::Mutex, time::Instant};

use super::api::ErrorBody;
use crate::secret::Secret;

/// Headers that announce the requests left in the current minute (live responses use the first,
/// the documentation names the second) and the seconds until the counter resets.
const AVAILABLE_HEADERS: [&str; 2] = ["x-requests-available-minute", "x-requestsavailable"];
const RESET_HEADER: &str = "x-requestcounter-reset";

/// Retry and pacing settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Attempts per request (first try included) on 429, 5xx and network errors.
    pub max_attempts: u32,
    /// First back-off after a 5xx or network error; doubles each attempt, plus up to 50% jitter.
    pub base_backoff: Duration,
    /// No single wait (back-off, rate-limit reset) is longer than this.
    pub max_wait: Duration,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Stop this long before the deadline: time to record progress and answer.
    pub safety_margin: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_backoff: Duration::from_secs(2),
            max_wait: Duration::from_secs(65),
            request_timeout: Duration::from_secs(15),
            safety_margin: Duration::from_secs(20),
        }
    }
}

/// Why a request gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Going on would cross the deadline: stop and record progress.
    #[error("deadline reached before {path}")]
    Deadline { path: String },
    /// Still 429 after every attempt.
    #[error("{path}: rate limited after {attempts} attempts")]
    RateLimited { path: String, attempts: u32 },
    /// 5xx or network failure after every attempt.
    #[error("{path}: unavailable after {attempts} attempts: {reason}")]
    Unavailable { path: String, attempts: u32, reason: String },
    /// 4xx other than 429 (bad filter, resource outside the plan, unknown competition): not retried.
    #[error("{path}: HTTP {status}: {message}")]
    Refused { path: String, status: u16, message: String },
    /// A 200 whose body is not the documented shape.
    #[error("{path}: malformed response at {at}: {reason}")]
    Malformed { path: String, at: String, reason: String },
}

impl FetchError {
    pub fn is_deadline(&self) -> bool {
        matches!(self, FetchError::Deadline { .. })
    }

    /// Whether a later attempt may succeed (the API was busy or down), unlike a refusal or a body
    /// of the wrong shape.
    pub fn is_retryable(&self) -> bool {
        matches!(self, FetchError::Deadline { .. } | FetchError::RateLimited { .. } | FetchError::Unavailable { .. })
    }
}

/// What the last response said about the budget.
#[derive(Debug, Default, Clone, Copy)]
struct Budget {
    available: Option<u32>,
    resets_at: Option<Instant>,
}

/// Counters for the run record.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientStats {
    pub requests: u32,
    pub retries: u32,
    pub rate_limit_waits: u32,
}

pub struct FootballDataClient {
    http: reqwest::Client,
    base_url: String,
    token: Secret,
    options: ClientOptions,
    budget: Mutex<Budget>,
    stats: Mutex<ClientStats>,
}

impl FootballDataClient {
    pub fn new(base_url: &str, token: Secret, options: ClientOptions) -> Result<Self, reqwest::Error> {
        let http = crate::tls::http_client()
            .user_agent(concat!("football-prediction/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            token,
            options,
            budget: Mutex::new(Budget::default()),
            stats: Mutex::new(ClientStats::default()),
        })
    }

    pub async fn stats(&self) -> ClientStats {
        *self.stats.lock().await
    }

    /// GET `path` (under the base URL) with `query`, decoded as `T`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        deadline: Instant,
    ) -> Result<T, FetchError> {
        let url = format!("{}{}", self.base_url, path);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            // Spend no request the plan has not got: wait for the counter to reset.
            let budget = *self.budget.lock().await;
            if let (Some(0), Some(resets_at)) = (budget.available, budget.resets_at)
                && resets_at > Instant::now()
            {
                self.stats.lock().await.rate_limit_waits += 1;
                self.sleep_until(resets_at + jitter(Duration::from_millis(200)), deadline, path).await?;
            }
            let remaining = self.time_left(deadline, path)?;
            self.stats.lock().await.requests += 1;
            let response = self
                .http
                .get(&url)
                .query(query)
                .header("X-Auth-Token", self.token.expose())
                .timeout(self.options.request_timeout.min(remaining))
                .send()
                .await;
            let response = match response {
                Ok(r) => r,
                Err(e) => {
                    let reason = if e.is_timeout() { "timed out".to_string() } else { "connection failed".to_string() };
                    self.back_off(attempt, deadline, path, reason).await?;
                    continue;
                }
            };
            let status = response.status().as_u16();
            let reset = self.note_budget(response.headers()).await;
            let body = match response.bytes().await {
                Ok(b) => b,
                Err(_) => {
                    self.back_off(attempt, deadline, path, "body interrupted".into()).await?;
                    continue;
                }
            };
            match status {
                200..=299 => {
                    let de = &mut serde_json::Deserializer::from_slice(&body);
                    return serde_path_to_error::deserialize(de).map_err(|e| FetchError::Malformed {
                        path: path.to_string(),
                        at: e.path().to_string(),
                        reason: e.inner().to_string(),
                    });
                }
                429 => {
                    if attempt >= self.options.max_attempts {
                        return Err(FetchError::RateLimited { path: path.to_string(), attempts: attempt });
                    }
                    let message = error_message(&body);
                    let wait = reset.or_else(|| wait_from_message(&message)).unwrap_or(Duration::from_secs(60));
                    tracing::warn!(path, wait_ms = wait.as_millis() as u64, "football-data.org rate limit reached");
                    {
                        let mut stats = self.stats.lock().await;
                        stats.retries += 1;
                        stats.rate_limit_waits += 1;
                    }
                    self.sleep_until(
                        Instant::now() + wait.min(self.options.max_wait) + jitter(wait / 10),
                        deadline,
                        path,
                    )
                    .await?;
                }
                500..=599 => {
                    let reason = format!("HTTP {status}");
                    self.back_off(attempt, deadline, path, reason).await?;
                }
                _ => {
                    return Err(FetchError::Refused { path: path.to_string(), status, message: error_message(&body) });
                }
            }
        }
    }

    /// Waits before the next attempt, or fails when attempts are exhausted or the deadline is near.
    async fn back_off(&self, attempt: u32, deadline: Instant, path: &str, reason: String) -> Result<(), FetchError> {
        if attempt >= self.options.max_attempts {
            return Err(FetchError::Unavailable { path: path.to_string(), attempts: attempt, reason });
        }
        tracing::warn!(path, attempt, %reason, "football-data.org request failed; retrying");
        self.stats.lock().await.retries += 1;
        let base = self.options.base_backoff.saturating_mul(1 << (attempt - 1).min(10)).min(self.options.max_wait);
        self.sleep_until(Instant::now() + base + jitter(base / 2), deadline, path).await
    }

    /// Sleeps until `until`, unless that leaves less than the safety margin before the deadline.
    async fn sleep_until(&self, until: Instant, deadline: Instant, path: &str) -> Result<(), FetchError> {
        if until + self.options.safety_margin >= deadline {
            return Err(FetchError::Deadline { path: path.to_string() });
        }
        tokio::time::sleep_until(until).await;
        Ok(())
    }

    /// Time left for a request, or `Deadline` inside the safety margin.
    fn time_left(&self, deadline: Instant, path: &str) -> Result<Duration, FetchError> {
        let now = Instant::now();
        match deadline.checked_duration_since(now + self.options.safety_margin) {
            Some(left) if left > Duration::from_millis(100) => Ok(left),
            _ => Err(FetchError::Deadline { path: path.to_string() }),
        }
    }

    /// Records the budget headers; returns the reset delay when announced.
    async fn note_budget(&self, headers: &reqwest::header::HeaderMap) -> Option<Duration> {
        let number =
            |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
        let available = AVAILABLE_HEADERS.iter().find_map(|h| number(h));
        let reset = number(RESET_HEADER).map(Duration::from_secs);
        let mut budget = self.budget.lock().await;
        if let Some(a) = available {
            budget.available = Some(a.min(u32::MAX as u64) as u32);
        }
        if let Some(r) = reset {
            budget.resets_at = Some(Instant::now() + r);
        }
        reset
    }
}

fn jitter(max: Duration) -> Duration {
    let ms = max.as_millis().min(60_000) as u64;
    if ms == 0 { Duration::ZERO } else { Duration::from_millis(rand::rng().random_range(0..=ms)) }
}

fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.text().map(str::to_string))
        .unwrap_or_else(|| "no message".into())
}

/// "You reached your request limit. Wait 48 seconds." -> 48 s.
fn wait_from_message(message: &str) -> Option<Duration> {
    let words: Vec<&str> = message.split_whitespace().collect();
    words
        .windows(2)
        .find_map(|w| (w[0].eq_ignore_ascii_case("wait") && w.len() == 2).then(|| w[1].parse::<u64>().ok()).flatten())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_wait_from_a_429_message() {
        assert_eq!(
            wait_from_message("You reached your request limit. Wait 48 seconds."),
            Some(Duration::from_secs(48))
        );
        assert_eq!(wait_from_message("restricted"), None);
    }

    #[test]
    fn error_bodies_with_message_or_error() {
        assert_eq!(error_message(br#"{"message":"m","errorCode":403}"#), "m");
        assert_eq!(error_message(br#"{"error":"e"}"#), "e");
        assert_eq!(error_message(b"<html>"), "no message");
    }
}
