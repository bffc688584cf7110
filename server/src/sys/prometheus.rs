//! Prometheus metrics: a histogram that many threads record into without a lock, and the writer
//! of the text exposition format (version 0.0.4) that `GET /metrics` answers with.
//!
//! Why not a metrics crate: `prometheus-client` writes OpenMetrics (`# EOF`, `_total` samples of
//! a family named without it), which `promtool check metrics` of Debian 12 (Prometheus 2.42)
//! rejects; `metrics-exporter-prometheus` records into one recorder per process, and the tests
//! run many servers in one process. Most figures here are read at scrape time from what the
//! server keeps anyway (the engine's counters, the Raft metrics); only latencies and batch sizes
//! are recorded as they happen, into the [`Histogram`]s.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use parking_lot::RwLock;

/// A Prometheus histogram with fixed bucket bounds. Recording is three atomic additions.
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds, increasing; `+Inf` is implied.
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative: summed when written); the last is `+Inf`'s.
    counts: Box<[AtomicU64]>,
    /// The sum of the observations, in millionths of the unit, so it adds without a lock.
    sum_micros: AtomicU64,
}

/// Seconds: from a tenth of a millisecond (an fsync on a fast disk) to ten seconds.
pub const SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Counts of items (a group commit's entries): powers of two up to the writer's largest batch.
pub const COUNTS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        // Saturating float-to-int: a negative or NaN value adds nothing.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let micros = (value * 1e6) as u64;
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn observe_duration(&self, elapsed: std::time::Duration) {
        self.observe(elapsed.as_secs_f64());
    }

    /// How many observations there were.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// The HTTP requests a server answered, per port, method and route (the route's pattern, so the
/// number of series is bounded by the routes, whatever paths clients send).
#[derive(Debug, Default)]
pub struct Requests {
    /// By (port, method), then by route: the route is looked up as the `&str` it is, so a request
    /// allocates nothing here once its route has been seen.
    routes: RwLock<BTreeMap<(&'static str, &'static str), Routes>>,
}

/// The requests of one port and method, by route.
type Routes = BTreeMap<String, Arc<RouteRequests>>;

#[derive(Debug)]
struct RouteRequests {
    seconds: Histogram,
    /// Answers by status class: 1xx to 5xx.
    by_class: [AtomicU64; 5],
}

impl Requests {
    /// Records one answer. `method` is one of the standard ones or `OTHER`; `route` a pattern.
    pub fn record(
        &self,
        port: &'static str,
        method: &'static str,
        route: &str,
        status: u16,
        took: Duration,
    ) {
        let found = self
            .routes
            .read()
            .get(&(port, method))
            .and_then(|routes| routes.get(route))
            .cloned();
        let entry = found.unwrap_or_else(|| {
            self.routes
                .write()
                .entry((port, method))
                .or_default()
                .entry(route.to_owned())
                .or_insert_with(|| {
                    Arc::new(RouteRequests {
                        seconds: Histogram::new(SECONDS),
                        by_class: Default::default(),
                    })
                })
                .clone()
        });
        entry.seconds.observe_duration(took);
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        entry.by_class[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Writes the two families: answers by status class, and the latency histograms.
    pub fn write(&self, out: &mut Exposition, prefix: &str) {
        let by_port = self.routes.read();
        let routes = || {
            by_port.iter().flat_map(|((port, method), routes)| {
                routes
                    .iter()
                    .map(move |(route, entry)| (*port, *method, route.as_str(), entry))
            })
        };
        let total = format!("{prefix}_http_requests_total");
        out.family(
            &total,
            Kind::Counter,
            "HTTP requests answered, by port, method, route and status class.",
        );
        for (port, method, route, entry) in routes() {
            for (i, count) in entry.by_class.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let class = format!("{}xx", i + 1);
                    #[allow(clippy::cast_precision_loss)]
                    out.sample(
                        &total,
                        &[
                            ("port", port),
                            ("method", method),
                            ("route", route),
                            ("code", &class),
                        ],
                        count as f64,
                    );
                }
            }
        }
        let seconds = format!("{prefix}_http_request_duration_seconds");
        out.family(
            &seconds,
            Kind::Histogram,
            "Time from a request's arrival to its answer's headers, by port, method and route.",
        );
        for (port, method, route, entry) in routes() {
            out.histogram(
                &seconds,
                &[("port", port), ("method", method), ("route", route)],
                &entry.seconds,
            );
        }
    }
}

/// What kind of metric a family is, as its `# TYPE` line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// The text of one scrape. Each family is introduced once by [`Exposition::family`] and followed
/// by its samples; label values are escaped here, names are the caller's constants.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts family `name` (a counter's name ends in `_total`).
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {}", kind.as_str());
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        write_labels(&mut self.text, labels, None);
        self.text.push(' ');
        write_value(&mut self.text, value);
        self.text.push('\n');
    }

    /// The samples of one histogram of the current family: cumulative buckets, sum and count.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], histogram: &Histogram) {
        let mut cumulative = 0;
        let bounds = histogram
            .bounds
            .iter()
            .map(|b| b.to_string())
            .chain(std::iter::once("+Inf".to_owned()));
        for (bound, count) in bounds.zip(histogram.counts.iter()) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = write!(self.text, "{name}_bucket");
            write_labels(&mut self.text, labels, Some(&bound));
            let _ = writeln!(self.text, " {cumulative}");
        }
        let _ = write!(self.text, "{name}_sum");
        write_labels(&mut self.text, labels, None);
        self.text.push(' ');
        #[allow(clippy::cast_precision_loss)]
        let sum = histogram.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        write_value(&mut self.text, sum);
        self.text.push('\n');
        let _ = write!(self.text, "{name}_count");
        write_labels(&mut self.text, labels, None);
        let _ = writeln!(self.text, " {cumulative}");
    }

    pub fn finish(self) -> String {
        self.text
    }
}

fn write_labels(out: &mut String, labels: &[(&str, &str)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (name, value) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

fn write_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_is_written_cumulatively_with_sum_and_count() {
        let h = Histogram::new(&[0.1, 1.0]);
        for v in [0.05, 0.5, 0.7, 3.0] {
            h.observe(v);
        }
        let mut e = Exposition::new();
        e.family("t_seconds", Kind::Histogram, "A test.");
        e.histogram("t_seconds", &[("route", "/a")], &h);
        assert_eq!(
            e.finish(),
            "# HELP t_seconds A test.\n# TYPE t_seconds histogram\n\
             t_seconds_bucket{route=\"/a\",le=\"0.1\"} 1\n\
             t_seconds_bucket{route=\"/a\",le=\"1\"} 3\n\
             t_seconds_bucket{route=\"/a\",le=\"+Inf\"} 4\n\
             t_seconds_sum{route=\"/a\"} 4.25\n\
             t_seconds_count{route=\"/a\"} 4\n"
        );
        assert_eq!(h.count(), 4);
    }

    #[test]
    fn label_values_are_escaped() {
        let mut e = Exposition::new();
        e.family("x", Kind::Gauge, "Help with \\ and\nnewline.");
        e.sample("x", &[("product", "a \"b\" \\ c\nd")], 1.5);
        assert_eq!(
            e.finish(),
            "# HELP x Help with \\\\ and\\nnewline.\n# TYPE x gauge\n\
             x{product=\"a \\\"b\\\" \\\\ c\\nd\"} 1.5\n"
        );
    }
}
