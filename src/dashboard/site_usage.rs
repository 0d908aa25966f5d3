//! The front end's disk use that the overview shows oneadmin: the Marketplace image cache and
//! the quarantine. Both are measured by walking directories, so the figures are measured on
//! the blocking pool, at most once per [`MAX_AGE`], by one request at a time; the others get
//! the last figures.

use crate::core::Core;
use crate::storage::cache::ImageCache;
use crate::storage::quarantine::Quarantine;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MAX_AGE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub cache_images: usize,
    pub cache_bytes: u64,
    pub quarantined: usize,
    pub quarantine_bytes: u64,
    /// The oldest quarantined directory's time of quarantine.
    pub oldest_quarantine: Option<i64>,
    pub measured: Option<Instant>,
}

#[derive(Default)]
pub struct SiteUsage {
    last: Mutex<Usage>,
    measuring: tokio::sync::Mutex<()>,
}

impl SiteUsage {
    fn last(&self) -> Usage {
        match self.last.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Recent figures, measured now if the last ones are too old.
    pub async fn get(&self, core: &Arc<Core>) -> Usage {
        let fresh = |u: &Usage| u.measured.is_some_and(|t| t.elapsed() < MAX_AGE);
        let last = self.last();
        if fresh(&last) {
            return last;
        }
        // One measurement at a time; the others wait for it rather than walk the disk too.
        let _guard = self.measuring.lock().await;
        let last = self.last();
        if fresh(&last) {
            return last;
        }
        let settings = core.settings.clone();
        let measured = tokio::task::spawn_blocking(move || {
            let (cache_images, cache_bytes) = ImageCache::new(settings.cache_dir()).usage();
            let quarantine = Quarantine::new(
                settings.quarantine_dir(),
                settings.storage.quarantine_period,
                settings.storage.volume_quarantine_period,
            );
            let entries = quarantine.entries();
            Usage {
                cache_images,
                cache_bytes,
                quarantined: entries.len(),
                quarantine_bytes: entries.iter().map(|e| e.bytes).sum(),
                oldest_quarantine: entries.iter().map(|e| e.marker.quarantined_at).min(),
                measured: Some(Instant::now()),
            }
        })
        .await
        .unwrap_or_default();
        if let Ok(mut g) = self.last.lock() {
            *g = measured.clone();
        }
        measured
    }
}
