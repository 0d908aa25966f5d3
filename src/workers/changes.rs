//! The core's change events as a worker consumes them: gathered into sets, so that a burst of
//! writes makes one pass over the VMs it touched instead of one pass over every VM per event.

use crate::core::{Core, Event};
use crate::model::Oid;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;

/// What changed since the worker last looked.
#[derive(Debug, Default)]
pub struct Changes {
    pub vms: BTreeSet<Oid>,
    pub hosts: bool,
    /// Events were missed (the worker fell behind) or this is the first look: every object
    /// must be looked at.
    pub everything: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.vms.is_empty() && !self.hosts && !self.everything
    }

    fn record(&mut self, event: Event) {
        match event {
            Event::VmChanged(id) | Event::VmEntered { id, .. } => {
                self.vms.insert(id);
            }
            Event::HostChanged(_) => self.hosts = true,
        }
    }
}

pub struct ChangeFeed {
    events: Receiver<Event>,
    pending: Changes,
}

impl ChangeFeed {
    /// Subscribes now; the first [`ChangeFeed::next`] asks for everything (work left from
    /// before a restart, or from before the subscription).
    pub fn subscribe(core: &Core) -> ChangeFeed {
        ChangeFeed {
            events: core.subscribe(),
            pending: Changes {
                everything: true,
                ..Changes::default()
            },
        }
    }

    /// Waits for at least one change (or for `timeout`, then the answer may be empty), takes
    /// every event already queued, and returns them all. `None` once the core is gone.
    pub async fn next(&mut self, timeout: Option<Duration>) -> Option<Changes> {
        if self.pending.is_empty() {
            let event = match timeout {
                Some(t) => tokio::time::timeout(t, self.events.recv()).await.ok(),
                None => Some(self.events.recv().await),
            };
            match event {
                None => {}
                Some(Ok(e)) => self.pending.record(e),
                Some(Err(RecvError::Lagged(_))) => self.pending.everything = true,
                Some(Err(RecvError::Closed)) => return None,
            }
        }
        loop {
            match self.events.try_recv() {
                Ok(e) => self.pending.record(e),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(_)) => self.pending.everything = true,
                Err(TryRecvError::Closed) => return None,
            }
        }
        Some(std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::ChangeFeed;
    use crate::config::Settings;
    use crate::core::auth::Caller;
    use crate::core::Core;
    use crate::store::Store;

    fn core() -> Core {
        Core::open(
            Store::open_in_memory().unwrap(),
            Settings::default(),
            "password",
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_burst_of_writes_is_one_set_of_changes() {
        let core = core();
        let mut feed = ChangeFeed::subscribe(&core);
        // The first look is at everything.
        let first = feed.next(None).await.unwrap();
        assert!(first.everything);

        let ids: Vec<i32> = (0..5)
            .map(|_| core.vm_allocate(&Caller::oneadmin(), "CPU = 1\n").unwrap())
            .collect();
        core.vm_action(&Caller::oneadmin(), "hold", ids[0]).unwrap();
        let host = core
            .host_allocate(
                &Caller::oneadmin(),
                "h",
                "im_dummy",
                "vmm_dummy",
                "dummy",
                "tm_dummy",
            )
            .unwrap();
        let changes = feed.next(None).await.unwrap();
        assert!(!changes.everything);
        assert!(changes.hosts, "host {host} changed");
        assert_eq!(changes.vms.into_iter().collect::<Vec<_>>(), ids);

        // Nothing new: the wait times out with nothing to do.
        let quiet = feed
            .next(Some(std::time::Duration::from_millis(10)))
            .await
            .unwrap();
        assert!(quiet.is_empty());
    }

    #[tokio::test]
    async fn missed_events_mean_look_at_everything() {
        let core = core();
        let mut feed = ChangeFeed::subscribe(&core);
        let _ = feed.next(None).await;
        // More writes than the event channel holds, while the worker is not looking.
        for _ in 0..4200 {
            core.vm_allocate(&Caller::oneadmin(), "CPU = 1\n").unwrap();
        }
        let changes = feed.next(None).await.unwrap();
        assert!(changes.everything);
    }
}
