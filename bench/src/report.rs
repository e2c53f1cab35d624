//! Results: rows of (measurement, median, p95, n, target, verdict) printed as a Markdown
//! table ready to paste into docs/benchmarks.md, or as JSON; plus what machine they came from.

use serde::Serialize;

use crate::stats::{summarize, Summary};

/// Which statistic a target constrains, and in which direction.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub enum Stat {
    Median,
    P95,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub enum Cmp {
    /// The statistic must be at most the limit.
    AtMost,
    /// The statistic must be at least the limit.
    AtLeast,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Target {
    pub stat: Stat,
    pub cmp: Cmp,
    pub limit: f64,
}

impl Target {
    pub fn median_at_most(limit: f64) -> Target {
        Target {
            stat: Stat::Median,
            cmp: Cmp::AtMost,
            limit,
        }
    }
    pub fn median_at_least(limit: f64) -> Target {
        Target {
            stat: Stat::Median,
            cmp: Cmp::AtLeast,
            limit,
        }
    }
    pub fn p95_at_most(limit: f64) -> Target {
        Target {
            stat: Stat::P95,
            cmp: Cmp::AtMost,
            limit,
        }
    }

    pub fn met(&self, s: &Summary) -> bool {
        let v = match self.stat {
            Stat::Median => s.median,
            Stat::P95 => s.p95,
        };
        match self.cmp {
            Cmp::AtMost => v <= self.limit,
            Cmp::AtLeast => v >= self.limit,
        }
    }

    pub fn describe(&self, unit: &str) -> String {
        let op = match self.cmp {
            Cmp::AtMost => "≤",
            Cmp::AtLeast => "≥",
        };
        let stat = match self.stat {
            Stat::Median => "median",
            Stat::P95 => "p95",
        };
        format!("{stat} {op} {}", fmt_value(self.limit, unit))
    }
}

/// One measured quantity.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: String,
    pub unit: String,
    pub summary: Option<Summary>,
    pub target: Option<Target>,
    /// "met", "missed", or why there is no number.
    pub verdict: String,
    pub note: String,
}

impl Row {
    pub fn new(name: impl Into<String>, unit: &str, samples: &[f64]) -> Row {
        let summary = summarize(samples);
        Row {
            name: name.into(),
            unit: unit.to_owned(),
            verdict: if summary.is_some() {
                String::new()
            } else {
                "no samples".into()
            },
            summary,
            target: None,
            note: String::new(),
        }
    }

    /// A row without a number (e.g. "not available yet").
    pub fn missing(name: impl Into<String>, why: &str) -> Row {
        Row {
            name: name.into(),
            unit: String::new(),
            summary: None,
            target: None,
            verdict: why.to_owned(),
            note: String::new(),
        }
    }

    pub fn target(mut self, t: Target) -> Row {
        if let Some(s) = &self.summary {
            self.verdict = if t.met(s) { "met" } else { "missed" }.into();
        }
        self.target = Some(t);
        self
    }

    /// A target stated for context only (e.g. an extrapolation): no verdict from this row.
    pub fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }

    pub fn markdown(&self) -> String {
        let (median, p95, n) = match &self.summary {
            Some(s) => (
                fmt_value(s.median, &self.unit),
                fmt_value(s.p95, &self.unit),
                s.n.to_string(),
            ),
            None => ("—".into(), "—".into(), "0".into()),
        };
        let target = self
            .target
            .as_ref()
            .map(|t| t.describe(&self.unit))
            .unwrap_or_else(|| "—".into());
        let mut verdict = self.verdict.clone();
        if !self.note.is_empty() {
            if verdict.is_empty() {
                verdict = self.note.clone();
            } else {
                verdict = format!("{verdict}; {}", self.note);
            }
        }
        if verdict.is_empty() {
            verdict = "—".into();
        }
        format!(
            "| {} | {median} | {p95} | {n} | {target} | {verdict} |",
            self.name
        )
    }
}

/// Formats a value with its unit, with precision fitting its size.
pub fn fmt_value(v: f64, unit: &str) -> String {
    let num = match unit {
        "ms" if v < 10.0 => format!("{v:.2}"),
        "ms" => format!("{v:.1}"),
        "s" => format!("{v:.2}"),
        "%" => format!("{v:.0}"),
        "" | "count" | "sessions" | "terminals" => format!("{v:.0}"),
        _ if v.abs() < 10.0 => format!("{v:.2}"),
        _ => format!("{v:.1}"),
    };
    match unit {
        "" | "count" => num,
        "%" => format!("{num} %"),
        u => format!("{num} {u}"),
    }
}

/// The results of one measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub measurement: String,
    pub rows: Vec<Row>,
    /// Everything else worth keeping (components, raw samples, settings).
    pub details: serde_json::Value,
}

pub const TABLE_HEADER: &str =
    "| measurement | median | p95 | n | target | verdict |\n|---|---|---|---|---|---|";

pub fn markdown(reports: &[Report]) -> String {
    let mut out = String::from(TABLE_HEADER);
    for r in reports {
        for row in &r.rows {
            out.push('\n');
            out.push_str(&row.markdown());
        }
    }
    out
}

/// The machine the numbers were taken on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub date_utc: String,
    pub cpus: usize,
    pub cpu_model: String,
    pub mem_total_gib: f64,
    pub mem_available_gib: f64,
    pub kernel: String,
    pub os: String,
    pub docker: String,
    pub load_average: String,
    pub command: String,
}

fn run_text(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// A `/proc/meminfo` field in KiB.
pub fn meminfo_kib(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_kib_field(&text, field)
}

/// `Field:   1234 kB` → 1234 (used for /proc/meminfo and /proc/PID/status).
pub fn parse_kib_field(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

impl Machine {
    pub fn describe() -> Machine {
        let gib = |f| {
            meminfo_kib(f)
                .map(|k| k as f64 / 1024.0 / 1024.0)
                .unwrap_or(0.0)
        };
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|s| s.trim().to_owned())
            })
            .unwrap_or_default();
        let os = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|s| s.trim_matches('"').to_owned())
            })
            .unwrap_or_default();
        Machine {
            date_utc: run_text("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            cpu_model,
            mem_total_gib: gib("MemTotal"),
            mem_available_gib: gib("MemAvailable"),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            os,
            docker: run_text("docker", &["version", "--format", "{{.Server.Version}}"]),
            load_average: load_average(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
        }
    }

    pub fn markdown(&self) -> String {
        format!(
            "- date: {}\n- machine: {} CPUs ({}), {:.1} GiB RAM ({:.1} GiB available at start), \
             load average at start {}\n- OS: {}, kernel {}, Docker {}\n- command: `{}`",
            self.date_utc,
            self.cpus,
            self.cpu_model,
            self.mem_total_gib,
            self.mem_available_gib,
            self.load_average,
            self.os,
            self.kernel,
            self.docker,
            self.command
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_render_as_markdown_with_verdicts() {
        let r = Row::new("echo", "ms", &[0.5, 0.7, 0.9]).target(Target::median_at_most(1.0));
        assert_eq!(
            r.markdown(),
            "| echo | 0.70 ms | 0.90 ms | 3 | median ≤ 1.00 ms | met |"
        );
        let r = Row::new("ready", "s", &[2.0, 1.6]).target(Target::median_at_most(1.5));
        assert_eq!(r.verdict, "missed");
        let r = Row::new("tp", "MB/s", &[50.0])
            .target(Target::median_at_least(40.0))
            .note("80 % of raw");
        assert!(r
            .markdown()
            .ends_with("| median ≥ 40.0 MB/s | met; 80 % of raw |"));
        let m = Row::missing("warm", "not available yet").markdown();
        assert_eq!(m, "| warm | — | — | 0 | — | not available yet |");
        assert!(Row::new("x", "ms", &[]).markdown().contains("no samples"));
    }

    #[test]
    fn p95_targets() {
        let r = Row::new("e", "ms", &[1.0, 60.0]).target(Target::p95_at_most(50.0));
        assert_eq!(r.verdict, "missed");
    }

    #[test]
    fn values_are_formatted_by_unit() {
        assert_eq!(fmt_value(0.1234, "ms"), "0.12 ms");
        assert_eq!(fmt_value(45.67, "ms"), "45.7 ms");
        assert_eq!(fmt_value(1.234, "s"), "1.23 s");
        assert_eq!(fmt_value(123.45, "MiB"), "123.5 MiB");
        assert_eq!(fmt_value(20.0, "sessions"), "20 sessions");
        assert_eq!(fmt_value(3.0, "count"), "3");
    }

    #[test]
    fn kib_fields_parse() {
        let status = "Name:\tdrydock\nVmPeak:\t  200 kB\nVmRSS:\t   12345 kB\n";
        assert_eq!(parse_kib_field(status, "VmRSS"), Some(12345));
        assert_eq!(parse_kib_field(status, "VmHWM"), None);
        assert_eq!(
            parse_kib_field("MemTotal:  24000000 kB", "MemTotal"),
            Some(24000000)
        );
    }
}
