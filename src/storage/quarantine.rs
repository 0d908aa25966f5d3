//! Quarantine of terminated VMs (hooks §8, StratusLab ≥ 13.05): at the end of a VM's life its
//! directory moves to `<data_dir>/quarantine/<vid>` instead of being deleted. Its disk
//! snapshots ("volumes") are purged after the volume period (pdisk's 15 min), the rest of the
//! directory after the directory period (the front-end's 48 h), both counted from the moment of
//! quarantine (recorded in `.quarantine.json`, not taken from file times).

use super::{Result, StorageError};
use crate::model::Oid;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const MARKER: &str = ".quarantine.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub vid: Oid,
    pub quarantined_at: i64,
    /// Disk snapshots, relative to the directory.
    pub volumes: Vec<String>,
    pub volumes_purged: bool,
    /// The disks of a VM that ran on a node without the shared VM directory stay in that
    /// node's quarantine; they are purged with the snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeCopy>,
}

/// Where a quarantined VM's disks wait on its node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCopy {
    /// The node (its ssh destination).
    pub target: String,
    pub path: PathBuf,
}

/// Removes a node's copy (over SSH); an error leaves the entry for the next pass.
pub type NodePurger<'a> = &'a dyn Fn(&NodeCopy) -> Result<()>;

/// One quarantined directory.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: PathBuf,
    pub marker: Marker,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub directories: usize,
    pub volumes: usize,
}

pub struct Quarantine {
    dir: PathBuf,
    directory_period: f64,
    volume_period: f64,
}

/// Bytes a directory really occupies (sparse files count what they hold).
fn disk_usage(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.blocks() * 512;
    }
    std::fs::read_dir(path)
        .map(|it| it.flatten().map(|e| disk_usage(&e.path())).sum())
        .unwrap_or(0)
}

fn remove_all(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

impl Quarantine {
    pub fn new(dir: impl Into<PathBuf>, directory_period: f64, volume_period: f64) -> Self {
        Quarantine {
            dir: dir.into(),
            directory_period,
            volume_period,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Moves a VM directory into quarantine; `None` when there was nothing to move. The
    /// top-level files named in `keep` (saved disks the front-end still has to pick up) stay
    /// in a fresh VM directory.
    pub fn admit(
        &self,
        home: &Path,
        vid: Oid,
        volumes: Vec<String>,
        keep: &[String],
        node: Option<NodeCopy>,
    ) -> Result<Option<PathBuf>> {
        if std::fs::symlink_metadata(home).is_err() {
            if node.is_none() {
                // Moved already by an admission that stopped before the kept files went back.
                self.take_back(home, vid, keep)?;
                return Ok(None);
            }
            // The VM's files were all on its node: the entry only records where they wait.
            std::fs::create_dir_all(home).map_err(StorageError::io(format!(
                "cannot create {}",
                home.display()
            )))?;
        }
        std::fs::create_dir_all(&self.dir).map_err(StorageError::io(format!(
            "cannot create {}",
            self.dir.display()
        )))?;
        let marker = Marker {
            vid,
            quarantined_at: crate::model::now(),
            volumes,
            volumes_purged: false,
            node,
        };
        let text = serde_json::to_vec_pretty(&marker)
            .map_err(|e| StorageError::BadValue(format!("cannot encode the marker: {e}")))?;
        let marker_path = home.join(MARKER);
        std::fs::write(&marker_path, text).map_err(StorageError::io(format!(
            "cannot write {}",
            marker_path.display()
        )))?;
        // A VM quarantined twice (resubmitted) keeps both directories.
        let mut to = self.dir.join(vid.to_string());
        let mut n = 1;
        while std::fs::symlink_metadata(&to).is_ok() {
            to = self.dir.join(format!("{vid}.{n}"));
            n += 1;
        }
        if let Err(e) = std::fs::rename(home, &to) {
            let _ = std::fs::remove_file(&marker_path);
            return Err(StorageError::Io {
                what: format!("cannot move {} to {}", home.display(), to.display()),
                source: e,
            });
        }
        let kept: Vec<&String> = keep
            .iter()
            .filter(|k| !k.contains('/') && to.join(k).exists())
            .collect();
        if !kept.is_empty() {
            std::fs::create_dir_all(home).map_err(StorageError::io(format!(
                "cannot create {}",
                home.display()
            )))?;
            for k in kept {
                std::fs::rename(to.join(k), home.join(k))
                    .map_err(StorageError::io(format!("cannot keep {k}")))?;
            }
        }
        // Users lose access to what is in quarantine.
        super::layout::set_mode(&to, 0o700)?;
        Ok(Some(to))
    }

    /// Moves the `keep` files of the VM's latest quarantined directory back into `home`, for
    /// an admission interrupted (by a daemon crash) between its two moves.
    fn take_back(&self, home: &Path, vid: Oid, keep: &[String]) -> Result<()> {
        let Some(latest) = self
            .entries()
            .into_iter()
            .filter(|e| e.marker.vid == vid)
            .max_by_key(|e| (e.marker.quarantined_at, e.path.clone()))
        else {
            return Ok(());
        };
        for k in keep.iter().filter(|k| !k.contains('/')) {
            let from = latest.path.join(k);
            if from.exists() {
                std::fs::create_dir_all(home).map_err(StorageError::io(format!(
                    "cannot create {}",
                    home.display()
                )))?;
                std::fs::rename(&from, home.join(k))
                    .map_err(StorageError::io(format!("cannot keep {k}")))?;
            }
        }
        Ok(())
    }

    pub fn entries(&self) -> Vec<Entry> {
        let Ok(list) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<Entry> = list
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| {
                let path = e.path();
                let marker = std::fs::read(path.join(MARKER))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Marker>(&b).ok())
                    .or_else(|| {
                        // No marker (written by something else): its age is its mtime.
                        let mtime = e.metadata().ok()?.modified().ok()?;
                        let secs =
                            mtime.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
                        Some(Marker {
                            vid: e.file_name().to_string_lossy().parse().unwrap_or(-1),
                            quarantined_at: secs,
                            volumes: Vec::new(),
                            volumes_purged: true,
                            node: None,
                        })
                    })?;
                let bytes = disk_usage(&path);
                Some(Entry {
                    path,
                    marker,
                    bytes,
                })
            })
            .collect();
        out.sort_by_key(|e| (e.marker.quarantined_at, e.marker.vid));
        out
    }

    /// Purges what is past its period at `now` (everything with `all`); disks kept on nodes
    /// go through `node_purger`.
    pub fn purge(&self, now: i64, all: bool, node_purger: NodePurger) -> PurgeReport {
        let mut report = PurgeReport::default();
        for entry in self.entries() {
            let age = (now - entry.marker.quarantined_at) as f64;
            let node_copy_left = !entry.marker.volumes_purged && entry.marker.node.is_some();
            if node_copy_left && (all || age >= self.volume_period) {
                if let Some(copy) = &entry.marker.node {
                    match node_purger(copy) {
                        Ok(()) => {
                            tracing::info!(vm = entry.marker.vid, node = %copy.target, path = %copy.path.display(), "quarantine: disks purged on the node");
                            report.volumes += 1;
                        }
                        Err(e) => {
                            // Kept, directory and all, until the node answers.
                            tracing::warn!(vm = entry.marker.vid, node = %copy.target, error = %e, "quarantine: cannot purge on the node");
                            continue;
                        }
                    }
                }
            }
            if all || age >= self.directory_period {
                match remove_all(&entry.path) {
                    Ok(()) => {
                        tracing::info!(vm = entry.marker.vid, path = %entry.path.display(), "quarantine: directory purged");
                        report.directories += 1;
                    }
                    Err(e) => {
                        tracing::warn!(path = %entry.path.display(), error = %e, "quarantine: cannot purge")
                    }
                }
                continue;
            }
            if !entry.marker.volumes_purged && age >= self.volume_period {
                for v in &entry.marker.volumes {
                    // Only plain relative names inside the directory.
                    if v.split('/').any(|c| c == ".." || c.is_empty()) {
                        continue;
                    }
                    match std::fs::remove_file(entry.path.join(v)) {
                        Ok(()) => report.volumes += 1,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            tracing::warn!(volume = %v, error = %e, "quarantine: cannot purge")
                        }
                    }
                }
                let mut marker = entry.marker.clone();
                marker.volumes_purged = true;
                marker.node = None;
                if let Ok(text) = serde_json::to_vec_pretty(&marker) {
                    let _ = std::fs::write(entry.path.join(MARKER), text);
                }
                tracing::info!(vm = marker.vid, "quarantine: disk snapshots purged");
            }
        }
        let left = self.entries();
        crate::metrics::metrics().quarantine(left.len(), left.iter().map(|e| e.bytes).sum());
        report
    }

    /// Seconds between purge passes: often enough for the shorter period.
    pub fn purge_interval(&self) -> f64 {
        (self.volume_period.min(self.directory_period) / 4.0).clamp(0.2, 300.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admit_then_purge_volumes_then_directory() {
        let root = std::env::temp_dir().join(format!("quarantine-test-{}", std::process::id()));
        let home = root.join("5");
        std::fs::create_dir_all(home.join("images")).unwrap();
        std::fs::write(home.join("images/disk.0"), b"snap").unwrap();
        std::fs::write(home.join("context.sh"), b"ctx").unwrap();
        let q = Quarantine::new(root.join("quarantine"), 100.0, 10.0);
        let to = q
            .admit(&home, 5, vec!["images/disk.0".into()], &[], None)
            .unwrap()
            .unwrap();
        assert!(!home.exists());
        assert_eq!(to, root.join("quarantine/5"));
        let t0 = q.entries()[0].marker.quarantined_at;
        assert_eq!(q.purge(t0 + 1, false, &no_nodes), PurgeReport::default());
        assert_eq!(
            q.purge(t0 + 11, false, &no_nodes),
            PurgeReport {
                directories: 0,
                volumes: 1
            }
        );
        assert!(!to.join("images/disk.0").exists());
        assert!(to.join("context.sh").exists());
        assert_eq!(q.purge(t0 + 12, false, &no_nodes), PurgeReport::default());
        assert_eq!(q.purge(t0 + 101, false, &no_nodes).directories, 1);
        assert!(!to.exists());
        assert!(q.admit(&home, 5, Vec::new(), &[], None).unwrap().is_none());
        let _ = std::fs::remove_dir_all(&root);
    }

    fn no_nodes(_: &NodeCopy) -> Result<()> {
        panic!("no entry has a node copy")
    }

    #[test]
    fn disks_kept_on_a_node_are_purged_there_and_retried() {
        let root = std::env::temp_dir().join(format!("quarantine-node-{}", std::process::id()));
        let home = root.join("8");
        let q = Quarantine::new(root.join("quarantine"), 100.0, 10.0);
        let copy = NodeCopy {
            target: "node1".into(),
            path: "/var/lib/one/quarantine/8.1".into(),
        };
        // Nothing left on the front-end: the entry is made to remember the node's copy.
        let to = q
            .admit(&home, 8, Vec::new(), &[], Some(copy.clone()))
            .unwrap()
            .unwrap();
        let t0 = q.entries()[0].marker.quarantined_at;
        let calls = std::cell::RefCell::new(Vec::new());
        let unreachable = |c: &NodeCopy| -> Result<()> {
            calls.borrow_mut().push(c.clone());
            Err(StorageError::Tool("node1 unreachable".into()))
        };
        assert_eq!(q.purge(t0 + 1, false, &unreachable), PurgeReport::default());
        assert!(calls.borrow().is_empty());
        // Past both periods, but the node does not answer: everything is kept for later.
        assert_eq!(q.purge(t0 + 200, false, &unreachable).directories, 0);
        assert_eq!(calls.borrow().as_slice(), std::slice::from_ref(&copy));
        assert!(to.exists());
        let reachable = |c: &NodeCopy| -> Result<()> {
            calls.borrow_mut().push(c.clone());
            Ok(())
        };
        assert_eq!(
            q.purge(t0 + 11, false, &reachable),
            PurgeReport {
                directories: 0,
                volumes: 1
            }
        );
        assert_eq!(q.entries()[0].marker.node, None);
        assert_eq!(q.purge(t0 + 200, false, &reachable).directories, 1);
        assert_eq!(calls.borrow().len(), 2);
        let _ = std::fs::remove_dir_all(&root);
    }
}
