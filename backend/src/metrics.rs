//! Prometheus metrics, written by hand in the text exposition format: sessions by state,
//! instance start latency, warm-pool adoptions, open terminals, bytes relayed.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the instance start latency histogram.
pub const START_BUCKETS: [f64; 10] = [0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0];

#[derive(Default)]
pub struct Metrics {
    pub terminals_open: AtomicU64,
    pub bytes_to_agent: AtomicU64,
    pub bytes_to_browser: AtomicU64,
    pub sessions_created: AtomicU64,
    pub sessions_expired: AtomicU64,
    pub sessions_closed: AtomicU64,
    pub instances_failed: AtomicU64,
    /// Sessions whose node1 came from a warm pool.
    pub warm_adopted: AtomicU64,
    start: Mutex<Histogram>,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; START_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Point-in-time gauges the caller computes at scrape time.
#[derive(Debug, Default, Clone)]
pub struct Gauges {
    /// (state, count) of live sessions.
    pub sessions: Vec<(&'static str, u64)>,
    /// (state, count) of live instances.
    pub instances: Vec<(&'static str, u64)>,
}

impl Metrics {
    pub fn observe_start(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let mut h = self.start.lock().unwrap_or_else(|e| e.into_inner());
        for (i, le) in START_BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The text exposition (format 0.0.4).
    pub fn render(&self, g: &Gauges) -> String {
        let mut o = String::new();
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);

        o.push_str("# HELP drydock_sessions Live sessions by state (starting: an instance is starting; failed: an instance failed; ready otherwise).\n");
        o.push_str("# TYPE drydock_sessions gauge\n");
        for (state, n) in &g.sessions {
            let _ = writeln!(o, "drydock_sessions{{state=\"{state}\"}} {n}");
        }
        o.push_str("# HELP drydock_instances Live instances by state.\n");
        o.push_str("# TYPE drydock_instances gauge\n");
        for (state, n) in &g.instances {
            let _ = writeln!(o, "drydock_instances{{state=\"{state}\"}} {n}");
        }
        o.push_str("# HELP drydock_sessions_ended_total Sessions ended, by reason.\n");
        o.push_str("# TYPE drydock_sessions_ended_total counter\n");
        let _ = writeln!(
            o,
            "drydock_sessions_ended_total{{reason=\"expired\"}} {}",
            ld(&self.sessions_expired)
        );
        let _ = writeln!(
            o,
            "drydock_sessions_ended_total{{reason=\"closed\"}} {}",
            ld(&self.sessions_closed)
        );
        o.push_str("# HELP drydock_sessions_created_total Sessions created.\n");
        o.push_str("# TYPE drydock_sessions_created_total counter\n");
        let _ = writeln!(
            o,
            "drydock_sessions_created_total {}",
            ld(&self.sessions_created)
        );
        o.push_str(
            "# HELP drydock_instances_failed_total Instances that failed to become ready.\n",
        );
        o.push_str("# TYPE drydock_instances_failed_total counter\n");
        let _ = writeln!(
            o,
            "drydock_instances_failed_total {}",
            ld(&self.instances_failed)
        );

        o.push_str(
            "# HELP drydock_warm_adopted_total Sessions whose first instance came from a warm pool.\n",
        );
        o.push_str("# TYPE drydock_warm_adopted_total counter\n");
        let _ = writeln!(o, "drydock_warm_adopted_total {}", ld(&self.warm_adopted));

        o.push_str("# HELP drydock_instance_start_seconds Time from creating an instance until its agent reports ready.\n");
        o.push_str("# TYPE drydock_instance_start_seconds histogram\n");
        {
            let h = self.start.lock().unwrap_or_else(|e| e.into_inner());
            for (i, le) in START_BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "drydock_instance_start_seconds_bucket{{le=\"{le}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                o,
                "drydock_instance_start_seconds_bucket{{le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(o, "drydock_instance_start_seconds_sum {}", h.sum);
            let _ = writeln!(o, "drydock_instance_start_seconds_count {}", h.count);
        }

        o.push_str("# HELP drydock_terminals_open Terminal WebSockets being relayed.\n");
        o.push_str("# TYPE drydock_terminals_open gauge\n");
        let _ = writeln!(o, "drydock_terminals_open {}", ld(&self.terminals_open));
        o.push_str(
            "# HELP drydock_relay_bytes_total Terminal frame bytes relayed, by direction.\n",
        );
        o.push_str("# TYPE drydock_relay_bytes_total counter\n");
        let _ = writeln!(
            o,
            "drydock_relay_bytes_total{{direction=\"to_agent\"}} {}",
            ld(&self.bytes_to_agent)
        );
        let _ = writeln!(
            o,
            "drydock_relay_bytes_total{{direction=\"to_browser\"}} {}",
            ld(&self.bytes_to_browser)
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let m = Metrics::default();
        m.observe_start(Duration::from_millis(800));
        m.observe_start(Duration::from_secs(4));
        let text = m.render(&Gauges::default());
        assert!(text.contains("drydock_instance_start_seconds_bucket{le=\"0.5\"} 0"));
        assert!(text.contains("drydock_instance_start_seconds_bucket{le=\"1\"} 1"));
        assert!(text.contains("drydock_instance_start_seconds_bucket{le=\"5\"} 2"));
        assert!(text.contains("drydock_instance_start_seconds_count 2"));
        assert!(text.contains("drydock_warm_adopted_total 0"));
    }
}
