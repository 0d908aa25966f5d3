//! Progress of `stratusd import`, a command of its own with no daemon to scrape: log lines
//! (each phase; per table the rows read, then the rows written of its total, every 5 s and
//! when the table is done) and, with `--progress-file PATH`, the same figures in the
//! Prometheus text format, rewritten atomically as they change (at most once a second, and at
//! every phase and finished table) for node_exporter's textfile collector.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often a table's progress goes to the log while it is written.
const LOG_EVERY: Duration = Duration::from_secs(5);
/// How often the progress file is rewritten at most (phases and finished tables: always).
const FILE_EVERY: Duration = Duration::from_secs(1);

/// The phases, in order.
pub const PHASES: [&str; 5] = ["read", "copy_files", "write", "verify", "done"];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Table {
    name: String,
    total: u64,
    done: u64,
}

pub struct ImportProgress {
    file: Option<PathBuf>,
    phase: &'static str,
    tables: Vec<Table>,
    started: Instant,
    last_log: Instant,
    last_file: Option<Instant>,
    /// Why the progress file could not be written (said once).
    file_failed: bool,
}

impl ImportProgress {
    pub fn new(file: Option<PathBuf>) -> ImportProgress {
        let now = Instant::now();
        ImportProgress {
            file,
            phase: PHASES[0],
            tables: Vec::new(),
            started: now,
            last_log: now,
            last_file: None,
            file_failed: false,
        }
    }

    /// The import enters `phase` (one of [`PHASES`]).
    pub fn phase(&mut self, phase: &'static str) {
        self.phase = phase;
        tracing::info!(
            phase,
            elapsed_ms = self.started.elapsed().as_millis() as u64,
            "import phase"
        );
        self.write_file(true);
    }

    /// `table` has `total` rows to bring over.
    pub fn table(&mut self, table: &str, total: u64) {
        tracing::info!(
            table,
            rows = total,
            "import: {table}: {total} rows to write"
        );
        match self.tables.iter_mut().find(|t| t.name == table) {
            Some(t) => t.total = total,
            None => self.tables.push(Table {
                name: table.to_string(),
                total,
                done: 0,
            }),
        }
    }

    /// `n` more rows of `table` written.
    pub fn advance(&mut self, table: &str, n: u64) {
        let Some(t) = self.tables.iter_mut().find(|t| t.name == table) else {
            return;
        };
        t.done += n;
        let finished = t.done >= t.total;
        let (done, total) = (t.done, t.total);
        if finished || self.last_log.elapsed() >= LOG_EVERY {
            self.last_log = Instant::now();
            tracing::info!(
                table,
                rows_done = done,
                rows_total = total,
                "import: {table} {done}/{total} rows written"
            );
        }
        self.write_file(finished);
    }

    /// The progress file's text: `stratusd_import_rows{table}`, `…_rows_done{table}`,
    /// `…_phase{phase}` (1 for the current one), `…_elapsed_seconds`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP stratusd_import_rows Rows of each oned table stratusd import brings over\n# TYPE stratusd_import_rows gauge\n");
        for t in &self.tables {
            let _ = writeln!(
                out,
                "stratusd_import_rows{{table=\"{}\"}} {}",
                t.name, t.total
            );
        }
        out.push_str("# HELP stratusd_import_rows_done Rows of each table written to stratusd's database so far\n# TYPE stratusd_import_rows_done gauge\n");
        for t in &self.tables {
            let _ = writeln!(
                out,
                "stratusd_import_rows_done{{table=\"{}\"}} {}",
                t.name, t.done
            );
        }
        out.push_str("# HELP stratusd_import_phase The phase the import is in (1), in order read (and convert), copy_files, write, verify, done\n# TYPE stratusd_import_phase gauge\n");
        for p in PHASES {
            let _ = writeln!(
                out,
                "stratusd_import_phase{{phase=\"{p}\"}} {}",
                u8::from(p == self.phase)
            );
        }
        let _ = write!(
            out,
            "# HELP stratusd_import_elapsed_seconds Time since the import started\n# TYPE stratusd_import_elapsed_seconds gauge\nstratusd_import_elapsed_seconds {:.3}\n",
            self.started.elapsed().as_secs_f64()
        );
        out
    }

    /// Rewrites the progress file (written aside, then renamed: the collector never reads half
    /// a file); `force` for phases and finished tables, otherwise at most once a second. A
    /// file that cannot be written is said once in the log; the import goes on.
    fn write_file(&mut self, force: bool) {
        let Some(path) = &self.file else {
            return;
        };
        if !force && self.last_file.is_some_and(|t| t.elapsed() < FILE_EVERY) {
            return;
        }
        self.last_file = Some(Instant::now());
        if let Err(e) = crate::storage::layout::write_atomically(path, self.render().as_bytes()) {
            if !self.file_failed {
                self.file_failed = true;
                tracing::warn!(file = %path.display(), error = %e, "cannot write the progress file");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_each_table_and_the_phase_go_to_the_file() {
        let dir = std::env::temp_dir().join(format!("import-progress-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("stratusd_import.prom");
        let mut p = ImportProgress::new(Some(file.clone()));
        p.phase("read");
        p.table("user_pool", 3);
        p.table("vm_pool", 1000);
        p.phase("write");
        p.advance("user_pool", 3);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.contains("stratusd_import_rows{table=\"vm_pool\"} 1000\n"),
            "{text}"
        );
        assert!(
            text.contains("stratusd_import_rows_done{table=\"user_pool\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("stratusd_import_rows_done{table=\"vm_pool\"} 0\n"));
        assert!(text.contains("stratusd_import_phase{phase=\"write\"} 1\n"));
        assert!(text.contains("stratusd_import_phase{phase=\"read\"} 0\n"));
        // Within a second, an unfinished table does not rewrite the file; finishing it does.
        p.advance("vm_pool", 500);
        assert!(std::fs::read_to_string(&file)
            .unwrap()
            .contains("stratusd_import_rows_done{table=\"vm_pool\"} 0\n"));
        p.advance("vm_pool", 500);
        assert!(std::fs::read_to_string(&file)
            .unwrap()
            .contains("stratusd_import_rows_done{table=\"vm_pool\"} 1000\n"));
        // Every family is announced once, each sample line parses as name{labels} value.
        let text = p.render();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            value.parse::<f64>().unwrap();
        }
        assert_eq!(text.matches("# TYPE").count(), 4);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
