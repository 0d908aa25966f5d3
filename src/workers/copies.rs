//! Carries out the outbox's `CopyImage` intents (`one.image.allocate` with a PATH, or a new
//! datablock): each copy into the image repository runs on one of a few threads
//! (`workpool::IMAGE_COPIES_AT_ONCE`), so a burst of allocations queues its copies (the images
//! stay LOCKED) instead of growing the thread count. The intents a crash left are read back at
//! start-up and queued here like new ones: their copies run again from scratch
//! ([`Core::carry_out_copy`]).

use crate::core::outbox::Lane;
use crate::core::Core;
use crate::workpool::{Threads, IMAGE_COPIES_AT_ONCE};
use std::sync::Arc;

pub fn spawn(core: Arc<Core>) {
    let threads = match Threads::new("image-copy", IMAGE_COPIES_AT_ONCE) {
        Ok(threads) => Some(threads),
        Err(e) => {
            tracing::error!(error = %e, "no image copy thread could be started; copies run one at a time on the blocking pool");
            None
        }
    };
    tokio::spawn(async move {
        loop {
            core.outbox().wait(Lane::Copies).await;
            for p in core.outbox().take(Lane::Copies, usize::MAX) {
                let c = Arc::clone(&core);
                let copy = move || {
                    if let Err(e) = c.carry_out_copy(&p) {
                        // The intent stays in the database: the next start runs the copy again.
                        tracing::error!(intent = p.id, error = %e, "an image copy's outcome not recorded");
                    }
                };
                match &threads {
                    Some(threads) => {
                        let waiting = threads.submit(copy);
                        if waiting > IMAGE_COPIES_AT_ONCE {
                            tracing::info!(waiting, "image copy queued");
                        }
                    }
                    None => {
                        if let Err(e) = tokio::task::spawn_blocking(copy).await {
                            tracing::error!(error = %e, "an image copy panicked");
                        }
                    }
                }
            }
        }
    });
}
