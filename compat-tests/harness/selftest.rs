//! The harness's own checks, run by `replay.rs` before every replay (and alone with
//! `--self-test`).
//!
//! The `compat` target is built with `harness = false`, so `#[cfg(test)]` functions in it
//! would never run; the checks are therefore ordinary code, gathered here from every module.

use std::path::Path;

/// Collects the outcome of individual checks.
#[derive(Default)]
pub struct Checks {
    passed: usize,
    failures: Vec<String>,
}

impl Checks {
    /// Records one check; `detail` explains a failure (it is only shown when `ok` is false).
    pub fn check(&mut self, name: &str, ok: bool, detail: impl std::fmt::Display) {
        if ok {
            self.passed += 1;
        } else {
            self.failures.push(format!("{name}: {detail}"));
        }
    }

    pub fn passed(&self) -> usize {
        self.passed
    }

    pub fn failures(&self) -> &[String] {
        &self.failures
    }
}

/// Runs every module's checks; `fixtures_dir` holds the recorded sessions, which are decoded
/// and compared against themselves and against mutated copies.
pub fn run_all(fixtures_dir: &Path) -> Checks {
    let mut checks = Checks::default();
    super::json::self_checks(&mut checks);
    super::xmltree::self_checks(&mut checks);
    super::xmlrpc::self_checks(&mut checks);
    super::compare::self_checks(&mut checks);
    super::http::self_checks(&mut checks);
    super::session::self_checks(&mut checks, fixtures_dir);
    super::catalog::self_checks(&mut checks);
    checks
}
