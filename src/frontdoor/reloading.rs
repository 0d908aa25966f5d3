//! Configuration files the front door re-reads when they change, as one-proxy's login modules
//! re-read the allowed-DN list: a site edits a file and the next request sees it, no restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

type Stamp = Option<(u64, Option<SystemTime>)>;

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.len(), m.modified().ok()))
}

/// A file's parsed content, re-read at most every `min_interval` when its size or modification
/// time changed. A failed re-read keeps the previous content (and says so in the log).
pub struct Reloading<T> {
    path: PathBuf,
    load: fn(&Path) -> Result<T, String>,
    min_interval: Duration,
    state: Mutex<State<T>>,
}

struct State<T> {
    value: Arc<T>,
    stamp: Stamp,
    checked: Instant,
}

impl<T> std::fmt::Debug for Reloading<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading")
            .field("path", &self.path)
            .finish()
    }
}

impl<T> Reloading<T> {
    /// Loads the file now; an error here is a start-up error.
    pub fn open(
        path: &Path,
        load: fn(&Path) -> Result<T, String>,
        min_interval: Duration,
    ) -> Result<Reloading<T>, String> {
        let before = stamp(path);
        let value = load(path)?;
        Ok(Reloading {
            path: path.to_path_buf(),
            load,
            min_interval,
            state: Mutex::new(State {
                value: Arc::new(value),
                stamp: before,
                checked: Instant::now(),
            }),
        })
    }

    /// The current content.
    pub fn current(&self) -> Arc<T> {
        let mut state = match self.state.lock() {
            Ok(s) => s,
            // A panic while reloading left the previous value in place: still usable.
            Err(poisoned) => poisoned.into_inner(),
        };
        if state.checked.elapsed() >= self.min_interval {
            state.checked = Instant::now();
            let now = stamp(&self.path);
            if now != state.stamp {
                match (self.load)(&self.path) {
                    Ok(value) => {
                        tracing::info!(file = %self.path.display(), "re-read after a change");
                        state.value = Arc::new(value);
                        state.stamp = now;
                    }
                    Err(e) => {
                        tracing::warn!(file = %self.path.display(), error = %e, "re-reading failed; the previous content stays in use")
                    }
                }
            }
        }
        Arc::clone(&state.value)
    }
}
