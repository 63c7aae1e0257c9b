//! What the report says about the machine and build that produced its wall times.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// The machine and build a report was produced on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MachineInfo {
    /// Operating system (`std::env::consts::OS`).
    pub os: String,
    /// CPU architecture (`std::env::consts::ARCH`).
    pub arch: String,
    /// CPU model from `/proc/cpuinfo`, when readable.
    pub cpu: Option<String>,
    /// Logical cores available to this process.
    pub logical_cores: usize,
    /// Total memory in GiB from `/proc/meminfo`, when readable.
    pub memory_gib: Option<f64>,
    /// `release` or `debug` (debug builds make every wall time slower and unrepresentative).
    pub build: String,
    /// Version of this crate.
    pub version: String,
}

impl MachineInfo {
    /// Detects the current machine.
    pub fn detect() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        });
        let memory_gib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
                .map(|kb| kb / (1024.0 * 1024.0))
        });
        Self {
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
            cpu,
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib,
            build: if cfg!(debug_assertions) {
                "debug".into()
            } else {
                "release".into()
            },
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// One line for the report.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} ({}, {} logical cores",
            self.cpu.as_deref().unwrap_or("unknown CPU"),
            self.arch,
            self.logical_cores
        );
        if let Some(m) = self.memory_gib {
            s.push_str(&format!(", {m:.0} GiB"));
        }
        s.push_str(&format!(
            "), {}; pfn {} {} build",
            self.os, self.version, self.build
        ));
        if self.build == "debug" {
            s.push_str(" (wall times of a debug build are not representative)");
        }
        s
    }
}

/// The current time as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_utc(secs)
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian).
pub fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting_of_known_instants() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_798_288_496), "2026-12-26 12:34:56 UTC");
    }

    #[test]
    fn detection_reports_cores_and_build() {
        let m = MachineInfo::detect();
        assert!(m.logical_cores >= 1);
        assert!(m.build == "debug" || m.build == "release");
        assert!(m.describe().contains(&m.arch));
    }
}
