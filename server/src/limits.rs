//! Request limits that protect the server from its callers: token-bucket rate limits keyed on the
//! token, the workspace and the client address (idle buckets are evicted), a cap on live streams
//! per token, and the client address itself.

use crate::error::ApiError;
use actix_web::HttpRequest;
use shared_schema::ErrorCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Buckets are swept for idle ones every this many checks.
const SWEEP_EVERY: u64 = 4096;

/// Token buckets by key: `rate` per second, bursts of `burst`.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    state: Mutex<Buckets>,
}

struct Buckets {
    map: HashMap<String, (f64, Instant)>,
    checks: u64,
}

impl RateLimiter {
    /// `rate` requests per second, bursts of `burst`.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate: rate.max(0.001),
            burst: burst.max(1.0),
            state: Mutex::new(Buckets {
                map: HashMap::new(),
                checks: 0,
            }),
        }
    }

    /// Takes one request from `key`'s bucket, or says how many seconds to wait.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let Ok(mut state) = self.state.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        state.checks += 1;
        if state.checks % SWEEP_EVERY == 0 {
            // A bucket idle long enough to be full again carries no information: drop it.
            let full_after = self.burst / self.rate;
            state
                .map
                .retain(|_, (_, at)| now.duration_since(*at).as_secs_f64() < full_after);
        }
        let (tokens, at) = state.map.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens < 1.0 {
            return Err(((1.0 - *tokens) / self.rate).ceil().max(1.0) as u64);
        }
        *tokens -= 1.0;
        Ok(())
    }

    /// Buckets held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.state.lock().map(|s| s.map.len()).unwrap_or(0)
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// 429 with `Retry-After`.
pub fn too_many(what: &str, retry_after: u64) -> ApiError {
    let mut err = ApiError::new(
        ErrorCode::RateLimited,
        format!("too many requests {what}; retry in {retry_after} s"),
    );
    err.retry_after = Some(retry_after);
    err
}

/// The client's address: the peer, or the first `X-Forwarded-For` hop when trusted.
pub fn client_addr(req: &HttpRequest, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for {
        if let Some(ip) = req
            .headers()
            .get("X-Forwarded-For")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            return ip.to_owned();
        }
    }
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Open live streams per token, capped.
#[derive(Default)]
pub struct StreamCounts {
    map: Mutex<HashMap<String, usize>>,
}

/// One open stream; dropping it frees its slot.
pub struct StreamSlot {
    counts: Arc<StreamCounts>,
    token: String,
}

impl StreamCounts {
    /// Takes a slot for `token` unless it already holds `max`.
    pub fn open(self: &Arc<Self>, token: &str, max: usize) -> Option<StreamSlot> {
        let mut map = self.map.lock().ok()?;
        let n = map.entry(token.to_owned()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            counts: self.clone(),
            token: token.to_owned(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Ok(mut map) = self.counts.map.lock() {
            if let Some(n) = map.get_mut(&self.token) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&self.token);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_asks_to_wait() {
        let limiter = RateLimiter::new(1.0, 3.0);
        for _ in 0..3 {
            assert_eq!(limiter.check("a"), Ok(()));
        }
        assert!(limiter.check("a").is_err());
        assert_eq!(limiter.check("b"), Ok(()), "buckets are per key");
    }

    #[test]
    fn idle_buckets_are_evicted() {
        let limiter = RateLimiter::new(1_000_000.0, 1.0);
        for i in 0..SWEEP_EVERY - 1 {
            let _ = limiter.check(&format!("k{i}"));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        let _ = limiter.check("last");
        assert!(limiter.len() < 10, "{} buckets left", limiter.len());
    }

    #[test]
    fn stream_slots_are_capped_and_freed_on_drop() {
        let counts = Arc::new(StreamCounts::default());
        let a = counts.open("t", 2);
        let b = counts.open("t", 2);
        assert!(a.is_some() && b.is_some());
        assert!(counts.open("t", 2).is_none());
        drop(a);
        assert!(counts.open("t", 2).is_some());
    }
}
