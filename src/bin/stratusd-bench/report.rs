//! The printed table: the baseline's columns, plus the oned figure and the ratio on each row.

use super::wrk::WrkRun;

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One wrk measurement point over several runs.
pub struct LoadRow {
    pub call: &'static str,
    /// How wrk checked the answers.
    pub check: &'static str,
    pub vms: usize,
    pub connections: u32,
    pub runs: Vec<WrkRun>,
    /// stratusd CPU % of each run (100 = one core).
    pub cpu_percent: Vec<f64>,
    pub oned_rps: Option<f64>,
}

fn fmt_rps(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn ratio(ours: f64, theirs: Option<f64>) -> String {
    match theirs {
        Some(t) if t > 0.0 => format!("{:.1}×", ours / t),
        _ => "—".into(),
    }
}

pub fn load_header() -> String {
    "| call | answers checked | VMs | conc | runs | req/s median (min–max) | mean ms | p50 ms | p99 ms | stratusd CPU % | failures | oned req/s | ratio |\n\
     |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        .to_string()
}

impl LoadRow {
    pub fn median_rps(&self) -> f64 {
        median(self.runs.iter().map(|r| r.rps).collect())
    }

    pub fn line(&self) -> String {
        let rps: Vec<f64> = self.runs.iter().map(|r| r.rps).collect();
        let min = rps.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rps.iter().copied().fold(0.0, f64::max);
        let med = self.median_rps();
        let col = |f: fn(&WrkRun) -> f64| median(self.runs.iter().map(f).collect());
        let failures: u64 = self.runs.iter().map(|r| r.failures).sum();
        format!(
            "| {} | {} | {} | {} | {} | {} ({}–{}) | {:.2} | {:.2} | {:.2} | {:.0} | {} | {} | {} |",
            self.call,
            self.check,
            self.vms,
            self.connections,
            self.runs.len(),
            fmt_rps(med),
            fmt_rps(min),
            fmt_rps(max),
            col(|r| r.mean_ms),
            col(|r| r.p50_ms),
            col(|r| r.p99_ms),
            median(self.cpu_percent.clone()),
            failures,
            self.oned_rps.map(fmt_rps).unwrap_or_else(|| "—".into()),
            ratio(med, self.oned_rps),
        )
    }
}

/// A rate (VMs/s) or memory figure with its oned counterpart.
pub struct FigureRow {
    pub what: String,
    pub value: f64,
    pub unit: &'static str,
    pub oned: Option<f64>,
    /// For memory, lower is better: the ratio printed is oned / ours.
    pub lower_is_better: bool,
}

pub fn figure_header() -> String {
    "| measurement | stratusd | oned 3.2 | ratio |\n|---|---:|---:|---:|".to_string()
}

impl FigureRow {
    pub fn line(&self) -> String {
        let fmt = |v: f64| {
            if self.unit == "KiB" {
                format!("{v:.0} KiB")
            } else {
                format!("{v:.0} {}", self.unit)
            }
        };
        let ratio = match self.oned {
            Some(o) if self.lower_is_better && self.value > 0.0 && o >= self.value => {
                format!("{:.2}× less", o / self.value)
            }
            Some(o) if self.lower_is_better && o > 0.0 => {
                format!("{:.2}× more", self.value / o)
            }
            Some(o) if o > 0.0 => format!("{:.1}×", self.value / o),
            _ => "—".into(),
        };
        format!(
            "| {} | {} | {} | {} |",
            self.what,
            fmt(self.value),
            self.oned.map(fmt).unwrap_or_else(|| "—".into()),
            ratio
        )
    }
}
