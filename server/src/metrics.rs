//! Prometheus text metrics: requests by status class, latency histogram, live connections, pushes
//! and bytes stored.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// Process-wide counters.
#[derive(Default)]
pub struct Metrics {
    by_class: [AtomicU64; 6],
    latency_buckets: [AtomicU64; 10],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    /// Open live-channel connections.
    pub live_connections: AtomicI64,
    /// Updates stored by pushes on this process.
    pub updates_stored: AtomicU64,
    /// Authorized pushes being read, stored or answered right now.
    pushes_in_flight: AtomicI64,
}

/// Counts a push as in flight until dropped.
pub struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Marks an authorized push as in flight (its body is about to be read) until the guard drops.
    pub fn push_started(&self) -> InFlight<'_> {
        self.pushes_in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.pushes_in_flight)
    }

    /// Records one finished request.
    pub fn observe(&self, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).min(5);
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Renders the Prometheus text format.
    pub fn render(&self, bytes_stored: i64) -> String {
        let mut out = String::new();
        out.push_str("# HELP hearth_requests_total HTTP requests by status class.\n# TYPE hearth_requests_total counter\n");
        for (i, c) in self.by_class.iter().enumerate().skip(1) {
            out.push_str(&format!(
                "hearth_requests_total{{class=\"{i}xx\"}} {}\n",
                c.load(Ordering::Relaxed)
            ));
        }
        out.push_str("# HELP hearth_request_duration_seconds Request latency.\n# TYPE hearth_request_duration_seconds histogram\n");
        for (i, b) in BUCKETS.iter().enumerate() {
            out.push_str(&format!(
                "hearth_request_duration_seconds_bucket{{le=\"{b}\"}} {}\n",
                self.latency_buckets[i].load(Ordering::Relaxed)
            ));
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        out.push_str(&format!(
            "hearth_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}\nhearth_request_duration_seconds_sum {}\nhearth_request_duration_seconds_count {count}\n",
            self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        ));
        out.push_str(&format!(
            "# HELP hearth_live_connections Open live-channel connections.\n# TYPE hearth_live_connections gauge\nhearth_live_connections {}\n",
            self.live_connections.load(Ordering::Relaxed)
        ));
        out.push_str(&format!(
            "# HELP hearth_pushes_in_flight Authorized pushes being read, stored or answered.\n# TYPE hearth_pushes_in_flight gauge\nhearth_pushes_in_flight {}\n",
            self.pushes_in_flight.load(Ordering::Relaxed)
        ));
        out.push_str(&format!(
            "# HELP hearth_updates_stored_total Updates stored by this process.\n# TYPE hearth_updates_stored_total counter\nhearth_updates_stored_total {}\n",
            self.updates_stored.load(Ordering::Relaxed)
        ));
        out.push_str(&format!(
            "# HELP hearth_bytes_stored Bytes of updates and snapshots in the database.\n# TYPE hearth_bytes_stored gauge\nhearth_bytes_stored {bytes_stored}\n"
        ));
        out
    }
}
