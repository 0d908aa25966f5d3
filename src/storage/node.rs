//! Where a host keeps its VMs' files, and how they get there.
//!
//! A host either sees the front-end's VM directory root (local, or shared over NFS: what the
//! transfer drivers always assumed) or has its own, which stratusd reaches over SSH — StratusLab's
//! ssh mode, 3.2's `tm_ssh`. The choice is per host (`docs/sites.md`):
//!
//! * `VM_DIR_SHARED = "YES"` / `"NO"` in the host template says it;
//! * without it, a `tm_ssh` host that is a real remote hypervisor is not shared (3.2's ssh
//!   driver copied everything to the node), every other host is;
//! * `VM_DIR` is the node's VM directory root (default: the front-end's, as oned's single
//!   `VM_DIR` was the same on every node);
//! * simulated hosts (`vmm_dummy`) run inside the daemon: always shared.
//!
//! A node that is not shared keeps the same layout under its `VM_DIR` (`<vid>/images/disk.<i>`,
//! the pdisk registration file, the quarantine) plus its own image cache, `cache/images/<id>`,
//! each image verified by SHA-1 on the node when it arrives and stamped `<id>.sha1` (SHA-1 and
//! size), so later VMs of the same image start from the node's copy. The front-end keeps the
//! VM's `context.sh` and `disks.json`; the disks live on the node only.

use super::cache::{CachedImage, ImageCache};
use super::layout::{DiskKind, DisksRecord};
use super::ssh::{quote, quote_path, SshClient};
use super::{mib, Reporter, Result, StorageError};
use crate::model::{Host, Oid};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// Host attribute: is the host's VM directory the front-end's (`YES`) or its own (`NO`)?
pub const SHARED_ATTRIBUTE: &str = "VM_DIR_SHARED";
/// Host attribute: the node's VM directory root.
pub const VM_DIR_ATTRIBUTE: &str = "VM_DIR";

/// How a host's VM files are reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeStorage {
    /// The host sees the front-end's VM directory root at the same path.
    Shared,
    /// The host has its own VM directory root, reached over SSH.
    Remote(RemoteNode),
}

/// A node with a VM directory of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteNode {
    /// The ssh destination: the host's name.
    pub target: String,
    /// The node's VM directory root.
    pub vm_dir: PathBuf,
}

/// Names under which a host is this machine (its libvirt is `qemu:///system`).
pub fn is_local_name(name: &str) -> bool {
    if matches!(name, "localhost" | "127.0.0.1") {
        return true;
    }
    std::fs::read_to_string("/etc/hostname").is_ok_and(|h| h.trim() == name)
}

fn is_simulated(host: &Host) -> bool {
    matches!(host.vm_mad.as_str(), "vmm_dummy" | "dummy")
}

/// An absolute path without `.`/`..`, made of plain UTF-8 names (it goes into node scripts and
/// domain descriptions).
fn check_vm_dir(text: &str) -> Result<PathBuf> {
    let path = PathBuf::from(text.trim());
    let plain = path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        && !text.chars().any(|c| c.is_control());
    if plain {
        Ok(path)
    } else {
        Err(StorageError::BadValue(format!(
            "host attribute {VM_DIR_ATTRIBUTE} must be an absolute path, not {text:?}"
        )))
    }
}

impl NodeStorage {
    /// How `host` keeps its VMs' files; `front_end_vm_dir` is the daemon's VM directory root.
    pub fn of(host: &Host, front_end_vm_dir: &Path) -> Result<NodeStorage> {
        if is_simulated(host) {
            return Ok(NodeStorage::Shared);
        }
        let shared = match host.template.get(SHARED_ATTRIBUTE).map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("yes") => true,
            Some(v) if v.eq_ignore_ascii_case("no") => false,
            None | Some("") => {
                // 3.2's ssh driver: a remote host gets its own copies.
                !matches!(host.tm_mad.as_str(), "tm_ssh" | "ssh") || is_local_name(&host.name)
            }
            Some(other) => {
                return Err(StorageError::BadValue(format!(
                    "host attribute {SHARED_ATTRIBUTE} must be YES or NO, not {other:?}"
                )))
            }
        };
        if shared {
            return Ok(NodeStorage::Shared);
        }
        super::ssh::check_target(&host.name)?;
        let vm_dir = match host.template.get(VM_DIR_ATTRIBUTE) {
            Some(dir) if !dir.trim().is_empty() => check_vm_dir(dir)?,
            _ => front_end_vm_dir.to_path_buf(),
        };
        Ok(NodeStorage::Remote(RemoteNode {
            target: host.name.clone(),
            vm_dir,
        }))
    }

    /// The VM directory root the hypervisor of this host sees.
    pub fn vm_dir<'a>(&'a self, front_end_vm_dir: &'a Path) -> &'a Path {
        match self {
            NodeStorage::Shared => front_end_vm_dir,
            NodeStorage::Remote(node) => &node.vm_dir,
        }
    }

    pub fn remote(&self) -> Option<&RemoteNode> {
        match self {
            NodeStorage::Shared => None,
            NodeStorage::Remote(node) => Some(node),
        }
    }
}

impl RemoteNode {
    pub fn home(&self, vid: Oid) -> PathBuf {
        self.vm_dir.join(vid.to_string())
    }

    pub fn images(&self, vid: Oid) -> PathBuf {
        self.home(vid).join("images")
    }

    pub fn disk(&self, vid: Oid, index: usize) -> PathBuf {
        self.images(vid).join(format!("disk.{index}"))
    }

    fn cache_images(&self) -> PathBuf {
        self.vm_dir.join("cache").join("images")
    }

    /// The node's copy of cached image `id` (the backing file of its snapshots there).
    pub fn cache_image(&self, id: &str) -> PathBuf {
        self.cache_images().join(id)
    }

    fn quarantine_dir(&self) -> PathBuf {
        self.vm_dir.join("quarantine")
    }
}

/// Which side of a move holds a VM directory.
#[derive(Debug, Clone, Copy)]
pub enum Place<'a> {
    /// The front-end's VM directory root (also the shared hosts').
    FrontEnd(&'a Path),
    Node(&'a RemoteNode),
}

/// A snapshot disk of a VM: its index, the cached image behind it and that image's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotDisk {
    pub index: usize,
    pub image: String,
    pub format: String,
}

/// The snapshot disks in a VM's record, with the formats of their cached images.
pub fn snapshot_disks(record: &DisksRecord, cache: &ImageCache) -> Result<Vec<SnapshotDisk>> {
    record
        .disks
        .iter()
        .filter_map(|(index, r)| match &r.kind {
            DiskKind::Snapshot { image } => Some((*index, image)),
            _ => None,
        })
        .map(|(index, image)| {
            let cached = cache.lookup(image).ok_or_else(|| {
                StorageError::BadValue(format!(
                    "disk {index} is a snapshot of image {image}, which is no longer cached"
                ))
            })?;
            Ok(SnapshotDisk {
                index,
                image: image.clone(),
                format: cached.format,
            })
        })
        .collect()
}

/// A node (its name and VM directory) and an image id.
type TransferKey = (String, String);

/// Operations on nodes that do not share the VM directory.
pub struct Nodes {
    ssh: SshClient,
    /// One transfer of an image to a node at a time: the others wait, then find it there.
    transfers: Mutex<HashMap<TransferKey, Arc<Mutex<()>>>>,
}

/// `mkdir -p` of the VM's image directory, group-accessible like the front-end's.
fn mkdir_images(node: &RemoteNode, vid: Oid) -> Result<String> {
    Ok(format!(
        "mkdir -p {images} && chmod 0770 {home} {images}",
        home = quote_path(&node.home(vid))?,
        images = quote_path(&node.images(vid))?
    ))
}

/// A script that writes its standard input to `path` atomically: into a temporary file next to
/// it (holes where the data is zero), then `mode`, then renamed over it.
fn receive_script(path: &Path, mode: u32) -> Result<String> {
    let dir = path
        .parent()
        .ok_or_else(|| StorageError::BadValue(format!("no directory in {}", path.display())))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| StorageError::BadValue(format!("no file name in {}", path.display())))?;
    Ok(format!(
        "umask 077; mkdir -p {dir} && t=$(mktemp {template}) && \
         if dd of=\"$t\" bs=1M iflag=fullblock conv=sparse status=none && chmod {mode:o} \"$t\" \
         && mv -f \"$t\" {path}; then :; else rm -f \"$t\"; exit 1; fi",
        dir = quote_path(dir)?,
        template = quote_path(&dir.join(format!(".{name}.XXXXXX")))?,
        path = quote_path(path)?,
    ))
}

impl Nodes {
    pub fn new(ssh: SshClient) -> Self {
        Nodes {
            ssh,
            transfers: Mutex::new(HashMap::new()),
        }
    }

    pub fn ssh(&self) -> &SshClient {
        &self.ssh
    }

    fn transfer_lock(&self, node: &RemoteNode, id: &str) -> Arc<Mutex<()>> {
        let mut locks = match self.transfers.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        let key = (
            format!("{}:{}", node.target, node.vm_dir.display()),
            id.into(),
        );
        Arc::clone(locks.entry(key).or_default())
    }

    /// Creates the VM's directories on the node.
    pub fn prepare(&self, node: &RemoteNode, vid: Oid) -> Result<()> {
        self.ssh
            .run(
                &node.target,
                &mkdir_images(node, vid)?,
                "creating the VM directory",
            )
            .map(drop)
    }

    /// Makes sure the node holds a verified copy of cached image `image` (hooks §3.2 on a node
    /// without shared storage): kept if its stamp and size match, else sent from the
    /// front-end's cache and checked on the node by SHA-1 before it is put in place.
    pub fn ensure_image(
        &self,
        node: &RemoteNode,
        cache: &ImageCache,
        image: &CachedImage,
        report: &Reporter,
    ) -> Result<()> {
        let lock = self.transfer_lock(node, &image.id);
        let _guard = match lock.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let on_node = node.cache_image(&image.id);
        let stamp_path = on_node.with_file_name(format!("{}.sha1", image.id));
        let stamp = format!("{} {}", image.sha1, image.bytes);
        let probe = format!(
            "printf '%s\\n' \"$(cat {stamp} 2>/dev/null)\"; stat -c %s {image} 2>/dev/null || true",
            stamp = quote_path(&stamp_path)?,
            image = quote_path(&on_node)?
        );
        let answer = self
            .ssh
            .run(&node.target, &probe, "looking up the node's image cache")?;
        let mut lines = answer.lines();
        let found_stamp = lines.next().unwrap_or("").trim();
        let found_size = lines.next().unwrap_or("").trim();
        if found_stamp == stamp && found_size == image.bytes.to_string() {
            report.info(&format!(
                "Image {} found in the cache of node {}",
                image.id, node.target
            ));
            return Ok(());
        }
        report.info(&format!(
            "Sending image {} ({}) to the cache of node {}",
            image.id,
            mib(image.bytes),
            node.target
        ));
        let partial = node.vm_dir.join("cache").join("partial");
        let script = format!(
            "umask 022; mkdir -p {partial} {images} && t=$(mktemp {template}) || exit 1; \
             if ! dd of=\"$t\" bs=1M iflag=fullblock conv=sparse status=none; then rm -f \"$t\"; exit 1; fi; \
             s=$(sha1sum < \"$t\" | cut -c1-40); n=$(stat -c %s \"$t\"); \
             if [ \"$s\" != {sha1} ] || [ \"$n\" != {bytes} ]; then rm -f \"$t\"; \
               echo \"the node's copy of image {id} has SHA-1 $s and $n bytes, expected {sha1} and {bytes}\" >&2; exit 1; fi; \
             chmod 0444 \"$t\" && mv -f \"$t\" {image} && echo {stamp_text} > \"$t.sha1\" && mv -f \"$t.sha1\" {stamp}",
            partial = quote_path(&partial)?,
            images = quote_path(&node.cache_images())?,
            template = quote_path(&partial.join(format!("{}.XXXXXX", image.id)))?,
            sha1 = quote(&image.sha1)?,
            bytes = image.bytes,
            id = image.id,
            image = quote_path(&on_node)?,
            stamp_text = quote(&stamp)?,
            stamp = quote_path(&stamp_path)?,
        );
        let path = cache.image_path(&image.id);
        let mut file = std::fs::File::open(&path)
            .map_err(StorageError::io(format!("cannot read {}", path.display())))?;
        self.ssh.send(
            &node.target,
            &script,
            &mut file,
            &format!("Sending image {} to node {}", image.id, node.target),
            Some(report),
        )?;
        report.info(&format!(
            "Image {} verified (SHA-1 {}) and cached on node {}",
            image.id, image.sha1, node.target
        ));
        Ok(())
    }

    /// The VM's qcow2 snapshot of the node's copy of `image` as disk `index`.
    pub fn create_overlay(
        &self,
        node: &RemoteNode,
        vid: Oid,
        index: usize,
        image: &str,
        format: &str,
    ) -> Result<()> {
        let disk = node.disk(vid, index);
        let script = format!(
            "{mkdir} && t={tmp} && qemu-img create -q -f qcow2 -b {backing} -F {format} \"$t\" \
             && chmod 0660 \"$t\" && mv -f \"$t\" {disk}",
            mkdir = mkdir_images(node, vid)?,
            tmp = quote_path(&disk.with_file_name(format!(".disk.{index}.new")))?,
            backing = quote_path(&node.cache_image(image))?,
            format = quote(format)?,
            disk = quote_path(&disk)?,
        );
        self.ssh
            .run(&node.target, &script, "cannot create the disk snapshot")
            .map(drop)
    }

    /// A swap disk: a sparse file of `size_mib` MiB with `header` (its first page) written.
    pub fn make_swap(
        &self,
        node: &RemoteNode,
        vid: Oid,
        index: usize,
        size_mib: u64,
        header: &[u8],
    ) -> Result<()> {
        let disk = node.disk(vid, index);
        let script = format!(
            "{mkdir} && t={tmp} && rm -f \"$t\" && truncate -s {size}M \"$t\" && \
             dd of=\"$t\" conv=notrunc status=none && chmod 0660 \"$t\" && mv -f \"$t\" {disk}",
            mkdir = mkdir_images(node, vid)?,
            tmp = quote_path(&disk.with_file_name(format!(".disk.{index}.new")))?,
            size = size_mib,
            disk = quote_path(&disk)?,
        );
        self.ssh
            .send(
                &node.target,
                &script,
                &mut &header[..],
                "making the swap disk",
                None,
            )
            .map(drop)
    }

    /// A file-system disk: `mkfs -t <format>` on a sparse file of `size_mib` MiB.
    pub fn make_filesystem(
        &self,
        node: &RemoteNode,
        vid: Oid,
        index: usize,
        size_mib: u64,
        format: &str,
    ) -> Result<()> {
        let disk = node.disk(vid, index);
        let quiet = if format.starts_with("ext") {
            " -q -F"
        } else {
            ""
        };
        let script = format!(
            "{mkdir} && t={tmp} && rm -f \"$t\" && truncate -s {size}M \"$t\" && \
             mkfs -t {format}{quiet} \"$t\" >/dev/null && chmod 0660 \"$t\" && mv -f \"$t\" {disk}",
            mkdir = mkdir_images(node, vid)?,
            tmp = quote_path(&disk.with_file_name(format!(".disk.{index}.new")))?,
            size = size_mib,
            format = quote(format)?,
            disk = quote_path(&disk)?,
        );
        self.ssh
            .run(&node.target, &script, &format!("mkfs -t {format}"))
            .map(drop)
    }

    /// Sends `from` to `path` on the node (mode `mode`), atomically.
    pub fn put(
        &self,
        node: &RemoteNode,
        from: &mut dyn Read,
        path: &Path,
        mode: u32,
        what: &str,
        report: Option<&Reporter>,
    ) -> Result<u64> {
        self.ssh.send(
            &node.target,
            &receive_script(path, mode)?,
            from,
            what,
            report,
        )
    }

    /// Copies `path` from the node into the local file `to` (sparse), atomically.
    pub fn fetch(
        &self,
        node: &RemoteNode,
        path: &Path,
        to: &Path,
        report: &Reporter,
    ) -> Result<u64> {
        let tmp = super::layout::temp_path(to);
        let script = format!("cat {}", quote_path(path)?);
        let result = (|| {
            let mut out = std::fs::File::create(&tmp)
                .map_err(StorageError::io(format!("cannot create {}", tmp.display())))?;
            let copied = self.ssh.receive_with(
                &node.target,
                &script,
                &format!("Copying {} from node {}", path.display(), node.target),
                |stdout| {
                    super::cache::copy_hashing(
                        stdout,
                        &mut out,
                        None,
                        &format!("Copying {} from node {}", path.display(), node.target),
                        Some(report),
                    )
                },
            )?;
            super::layout::set_mode(&tmp, 0o660)?;
            std::fs::rename(&tmp, to)
                .map_err(StorageError::io(format!("cannot place {}", to.display())))?;
            Ok(copied.bytes)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Removes the VM's directory from the node.
    pub fn remove_vm(&self, node: &RemoteNode, vid: Oid) -> Result<()> {
        let script = format!("rm -rf {}", quote_path(&node.home(vid))?);
        self.ssh
            .run(&node.target, &script, "removing the VM directory")
            .map(drop)
    }

    /// Moves the VM's directory into the node's quarantine (`<VM_DIR>/quarantine/<vid>.<time>`,
    /// mode 0700, as StratusLab's quarantine patch did on nodes); `None` when it had none.
    pub fn quarantine_vm(&self, node: &RemoteNode, vid: Oid, now: i64) -> Result<Option<PathBuf>> {
        let to = node.quarantine_dir().join(format!("{vid}.{now}"));
        let script = format!(
            "if [ -e {home} ]; then mkdir -p {q} && chmod 0700 {q} && mv {home} {to} && \
             chmod 0700 {to} && echo moved; fi",
            home = quote_path(&node.home(vid))?,
            q = quote_path(&node.quarantine_dir())?,
            to = quote_path(&to)?,
        );
        let out = self.ssh.run(
            &node.target,
            &script,
            "moving the VM directory to quarantine",
        )?;
        Ok((out.trim() == "moved").then_some(to))
    }

    /// Removes what the quarantine purge decided to remove on a node.
    pub fn purge(&self, target: &str, path: &Path) -> Result<()> {
        let script = format!("rm -rf {}", quote_path(path)?);
        self.ssh
            .run(target, &script, "purging the node's quarantine")
            .map(drop)
    }

    /// Points the VM's snapshots at the node's copies of their images (after a move from a
    /// node whose VM directory root differs), without touching their data.
    pub fn rebase_snapshots(
        &self,
        node: &RemoteNode,
        vid: Oid,
        snapshots: &[SnapshotDisk],
    ) -> Result<()> {
        if snapshots.is_empty() {
            return Ok(());
        }
        let mut script = String::from("true");
        for s in snapshots {
            script.push_str(&format!(
                " && qemu-img rebase -u -f qcow2 -b {backing} -F {format} {disk}",
                backing = quote_path(&node.cache_image(&s.image))?,
                format = quote(&s.format)?,
                disk = quote_path(&node.disk(vid, s.index))?,
            ));
        }
        self.ssh
            .run(
                &node.target,
                &script,
                "pointing the snapshots at the node's cache",
            )
            .map(drop)
    }

    /// Moves a VM directory (`members`, relative to the VM directory root, e.g. `42` or
    /// `42/images`) from one place to another, sparse files kept sparse (GNU tar on both
    /// sides). A hypervisor's disk copy (a live migration) allocates every zero block of the
    /// destination, and GNU tar archives a file that is not sparse whole, zeros included: a
    /// 1.5 GiB swap the guest never used went over the wire in full. So the source's zero
    /// blocks are given back to its file system first (`fallocate --dig-holes`, util-linux;
    /// the contents stay the same, and the VM is not running while its directory moves). The
    /// source keeps its copy: the caller removes it once the move is complete.
    pub fn copy_vm(
        &self,
        from: Place,
        to: Place,
        members: &[String],
        report: &Reporter,
    ) -> Result<u64> {
        if members.is_empty() {
            return Ok(0);
        }
        let what = format!("Moving {}", members.join(" "));
        let quoted: Vec<String> = members.iter().map(|m| quote(m)).collect::<Result<_>>()?;
        let pack = |root: &Path| -> Result<String> {
            Ok(format!(
                "cd {root} && {{ find {members} -type f -size +1M -exec fallocate --dig-holes {{}} \\; 2>/dev/null; }}; \
                 tar -C {root} --sparse --hole-detection=raw -cf - {members}",
                root = quote_path(root)?,
                members = quoted.join(" ")
            ))
        };
        let unpack = |root: &Path| -> Result<String> {
            Ok(format!(
                "mkdir -p {root} && tar -C {root} -xSf -",
                root = quote_path(root)?
            ))
        };
        match (from, to) {
            (Place::Node(a), Place::Node(b)) => self.ssh.relay(
                (&a.target, &pack(&a.vm_dir)?),
                (&b.target, &unpack(&b.vm_dir)?),
                &what,
                Some(report),
            ),
            (Place::Node(a), Place::FrontEnd(root)) => {
                std::fs::create_dir_all(root).map_err(StorageError::io(format!(
                    "cannot create {}",
                    root.display()
                )))?;
                let mut tar = local_tar(&["-C", path_str(root)?, "-xSf", "-"], true)?;
                let mut stdin = tar
                    .stdin
                    .take()
                    .ok_or_else(|| StorageError::Tool("no pipe to the local tar".into()))?;
                let moved = self.ssh.receive(
                    &a.target,
                    &pack(&a.vm_dir)?,
                    &mut stdin,
                    &what,
                    Some(report),
                );
                drop(stdin);
                finish_local_tar(tar)?;
                moved
            }
            (Place::FrontEnd(root), Place::Node(b)) => {
                dig_holes_locally(root, members);
                let mut args = vec![
                    "-C",
                    path_str(root)?,
                    "--sparse",
                    "--hole-detection=raw",
                    "-cf",
                    "-",
                ];
                args.extend(members.iter().map(String::as_str));
                let mut tar = local_tar(&args, false)?;
                let mut stdout = tar
                    .stdout
                    .take()
                    .ok_or_else(|| StorageError::Tool("no pipe from the local tar".into()))?;
                let moved = self.ssh.send(
                    &b.target,
                    &unpack(&b.vm_dir)?,
                    &mut stdout,
                    &what,
                    Some(report),
                );
                drop(stdout);
                finish_local_tar(tar)?;
                moved
            }
            (Place::FrontEnd(_), Place::FrontEnd(_)) => Ok(0),
        }
    }

    /// Before a live migration to a node without the VM's disks: the directory, the images of
    /// its snapshots and an empty snapshot of each (the hypervisor copies what the guest wrote),
    /// empty files of the right size for the other writable disks (copied whole), and a copy of
    /// the read-only context disk (never copied by the hypervisor).
    pub fn prepare_live_migration(
        &self,
        from: &RemoteNode,
        to: &RemoteNode,
        vid: Oid,
        record: &DisksRecord,
        cache: &ImageCache,
        report: &Reporter,
    ) -> Result<()> {
        self.prepare(to, vid)?;
        let snapshots = snapshot_disks(record, cache)?;
        for s in &snapshots {
            let image = cache.lookup(&s.image).ok_or_else(|| {
                StorageError::BadValue(format!("image {} is no longer cached", s.image))
            })?;
            self.ensure_image(to, cache, &image, report)?;
            self.create_overlay(to, vid, s.index, &s.image, &s.format)?;
        }
        for (index, r) in &record.disks {
            match &r.kind {
                DiskKind::Snapshot { .. } => {}
                DiskKind::ContextIso => {
                    let path = quote_path(&from.disk(vid, *index))?;
                    self.ssh.relay(
                        (&from.target, &format!("cat {path}")),
                        (&to.target, &receive_script(&to.disk(vid, *index), 0o660)?),
                        "Copying the context disk",
                        Some(report),
                    )?;
                }
                DiskKind::Pdisk { uuid, .. } => {
                    return Err(StorageError::BadValue(format!(
                        "persistent disk {uuid} cannot follow a live migration to a node without shared storage"
                    )))
                }
                DiskKind::Copy
                | DiskKind::Link
                | DiskKind::Swap
                | DiskKind::Filesystem
                | DiskKind::ContextVfat => {
                    let size = self.ssh.run(
                        &from.target,
                        &format!("stat -L -c %s {}", quote_path(&from.disk(vid, *index))?),
                        "reading a disk size",
                    )?;
                    let size: u64 = size.trim().parse().map_err(|_| {
                        StorageError::BadValue(format!("bad size of disk {index}: {size}"))
                    })?;
                    let disk = to.disk(vid, *index);
                    let script = format!(
                        "rm -f {disk} && truncate -s {size} {disk} && chmod 0660 {disk}",
                        disk = quote_path(&disk)?
                    );
                    self.ssh
                        .run(&to.target, &script, "creating a disk for the migration")?;
                }
            }
        }
        Ok(())
    }
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| StorageError::BadValue(format!("non UTF-8 path {}", p.display())))
}

/// `fallocate --dig-holes` on the files of `members` (under `root`) larger than 1 MiB, on the
/// front end (see [`Nodes::copy_vm`]); a file system without hole punching only makes the
/// copy larger, so failures are not errors.
fn dig_holes_locally(root: &Path, members: &[String]) {
    let mut find = Command::new("find");
    find.args(members.iter().map(|m| root.join(m)))
        .args(["-type", "f", "-size", "+1M"])
        .args(["-exec", "fallocate", "--dig-holes", "{}", ";"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Err(e) = find.status() {
        tracing::debug!(error = %e, "cannot give zero blocks back before a move");
    }
}

fn local_tar(args: &[&str], input: bool) -> Result<std::process::Child> {
    let mut c = Command::new("tar");
    c.args(args).stderr(Stdio::piped());
    if input {
        c.stdin(Stdio::piped()).stdout(Stdio::null());
    } else {
        c.stdin(Stdio::null()).stdout(Stdio::piped());
    }
    c.spawn()
        .map_err(|e| StorageError::Tool(format!("cannot run tar: {e}")))
}

fn finish_local_tar(mut tar: std::process::Child) -> Result<()> {
    let mut stderr = String::new();
    if let Some(mut s) = tar.stderr.take() {
        let _ = s.read_to_string(&mut stderr);
    }
    let status = tar
        .wait()
        .map_err(|e| StorageError::Tool(format!("tar: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(StorageError::Tool(format!(
            "tar on the front-end: {}",
            stderr.lines().last().unwrap_or("failed").trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Template;

    fn host(name: &str, tm: &str, vmm: &str, template: &str) -> Host {
        Host {
            id: 1,
            name: name.into(),
            state: crate::model::host::HostState::Monitored,
            im_mad: "im_kvm".into(),
            vm_mad: vmm.into(),
            vn_mad: "dummy".into(),
            tm_mad: tm.into(),
            last_mon_time: 0,
            share: Default::default(),
            template: Template::parse(template).unwrap(),
        }
    }

    #[test]
    fn the_host_template_chooses() {
        let fe = Path::new("/var/lib/stratusd");
        let of = |h: &Host| NodeStorage::of(h, fe);
        // Today's behaviour: shared unless said otherwise.
        assert_eq!(
            of(&host("node1", "tm_stratuslab", "vmm_kvm", "")).unwrap(),
            NodeStorage::Shared
        );
        let remote = of(&host(
            "node1",
            "tm_stratuslab",
            "vmm_kvm",
            "VM_DIR_SHARED=no",
        ))
        .unwrap();
        assert_eq!(
            remote,
            NodeStorage::Remote(RemoteNode {
                target: "node1".into(),
                vm_dir: fe.into()
            })
        );
        assert_eq!(remote.vm_dir(fe), fe);
        // 3.2's ssh driver: a remote tm_ssh host has its own directory.
        assert!(of(&host("node1", "tm_ssh", "vmm_kvm", ""))
            .unwrap()
            .remote()
            .is_some());
        assert_eq!(
            of(&host("localhost", "tm_ssh", "vmm_kvm", "")).unwrap(),
            NodeStorage::Shared
        );
        assert_eq!(
            of(&host("node1", "tm_ssh", "vmm_kvm", "VM_DIR_SHARED=YES")).unwrap(),
            NodeStorage::Shared
        );
        // Simulated hosts run in the daemon.
        assert_eq!(
            of(&host("sim", "tm_ssh", "vmm_dummy", "VM_DIR_SHARED=NO")).unwrap(),
            NodeStorage::Shared
        );
        let own = of(&host(
            "node2",
            "tm_stratuslab",
            "vmm_kvm",
            "VM_DIR_SHARED=NO\nVM_DIR=\"/var/lib/one\"",
        ))
        .unwrap();
        let node = own.remote().unwrap();
        assert_eq!(node.vm_dir, Path::new("/var/lib/one"));
        assert_eq!(node.disk(7, 1), Path::new("/var/lib/one/7/images/disk.1"));
        assert_eq!(
            node.cache_image("X"),
            Path::new("/var/lib/one/cache/images/X")
        );
        for bad in [
            "VM_DIR_SHARED=maybe",
            "VM_DIR_SHARED=NO\nVM_DIR=relative",
            "VM_DIR_SHARED=NO\nVM_DIR=\"/var/../etc\"",
        ] {
            assert!(
                of(&host("node1", "tm_stratuslab", "vmm_kvm", bad)).is_err(),
                "{bad}"
            );
        }
        assert!(of(&host("-oProxyCommand=x", "tm_ssh", "vmm_kvm", "")).is_err());
    }

    /// Runs node scripts with a local shell instead of ssh (the target is skipped), so every
    /// script here runs for real: dd, sha1sum, qemu-img, tar, mv.
    fn local_nodes(dir: &Path) -> Nodes {
        let fake = dir.join("fake-ssh");
        std::fs::write(
            &fake,
            "#!/bin/sh\nwhile [ \"$1\" != -- ]; do shift; done\nshift; shift\nexec sh -c \"$1\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        Nodes::new(SshClient::new(
            fake.to_str().unwrap(),
            5,
            std::time::Duration::from_secs(30),
        ))
    }

    #[test]
    fn node_operations_run_their_scripts() {
        use super::super::cache::Visibility;
        use super::super::layout::{DiskRecord, VmPaths};
        let dir = std::env::temp_dir().join(format!("node-ops-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let nodes = local_nodes(&dir);
        let log = crate::vmlog::VmLogDir::new(dir.join("logs"));
        let report = Reporter { vid: 3, log: &log };
        // The front-end's cache holds a verified image.
        let cache = ImageCache::new(dir.join("front/cache"));
        let mut data = vec![0u8; 3 << 20];
        data[5] = 1;
        data[(2 << 20) + 7] = 2;
        let sha1 = sha1_smol::Sha1::from(&data).digest().to_string();
        let staged = cache.partial_path("img").unwrap();
        std::fs::write(&staged, &data).unwrap();
        let image = CachedImage {
            id: "IMG".into(),
            sha1: sha1.clone(),
            bytes: data.len() as u64,
            format: "raw".into(),
            owner: "pdisk".into(),
            visibility: Visibility::Private,
            origin: String::new(),
            cached_at: 0,
        };
        cache.place(&image, &staged, "<metadata/>").unwrap();
        let a = RemoteNode {
            target: "node-a".into(),
            vm_dir: dir.join("a"),
        };
        let b = RemoteNode {
            target: "node-b".into(),
            vm_dir: dir.join("b"),
        };
        nodes.prepare(&a, 3).unwrap();
        nodes.ensure_image(&a, &cache, &image, &report).unwrap();
        assert_eq!(std::fs::read(a.cache_image("IMG")).unwrap(), data);
        let stamp = std::fs::read_to_string(a.vm_dir.join("cache/images/IMG.sha1")).unwrap();
        assert_eq!(stamp.trim(), format!("{sha1} {}", data.len()));
        // Found the second time: a damaged copy would be caught by its size at least.
        nodes.ensure_image(&a, &cache, &image, &report).unwrap();
        let logged = std::fs::read_to_string(dir.join("logs/3.log")).unwrap();
        assert!(
            logged.contains("found in the cache of node node-a"),
            "{logged}"
        );
        // A copy that arrives different is refused and leaves nothing.
        let liar = CachedImage {
            id: "LIAR".into(),
            sha1: "0".repeat(40),
            ..image.clone()
        };
        std::fs::copy(cache.image_path("IMG"), dir.join("front/cache/images/LIAR")).unwrap();
        let err = nodes.ensure_image(&a, &cache, &liar, &report).unwrap_err();
        assert!(
            err.to_string()
                .contains("the node's copy of image LIAR has SHA-1"),
            "{err}"
        );
        assert!(!a.cache_image("LIAR").exists());
        // The snapshot, a swap and a file system disk, a file and the context disk.
        nodes.create_overlay(&a, 3, 0, "IMG", "raw").unwrap();
        let info = Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(a.disk(3, 0))
            .output()
            .unwrap();
        let info = String::from_utf8_lossy(&info.stdout);
        assert!(
            info.contains(a.cache_image("IMG").to_str().unwrap()),
            "{info}"
        );
        let header = super::super::volatile::new_swap_header(4);
        nodes.make_swap(&a, 3, 1, 4, &header).unwrap();
        let swap = std::fs::read(a.disk(3, 1)).unwrap();
        assert_eq!(swap.len(), 4 << 20);
        assert_eq!(&swap[4086..4096], b"SWAPSPACE2");
        nodes.make_filesystem(&a, 3, 2, 4, "ext2").unwrap();
        nodes
            .put(&a, &mut &b"context"[..], &a.disk(3, 3), 0o660, "ctx", None)
            .unwrap();
        assert_eq!(std::fs::read(a.disk(3, 3)).unwrap(), b"context");
        // The front-end's record of what the disks are.
        let paths = VmPaths::new(&dir.join("front"), 3);
        for (i, kind) in [
            (
                0,
                DiskKind::Snapshot {
                    image: "IMG".into(),
                },
            ),
            (1, DiskKind::Swap),
            (2, DiskKind::Filesystem),
            (3, DiskKind::ContextIso),
        ] {
            paths.record_disk(i, DiskRecord::plain(kind)).unwrap();
        }
        let record = paths.read_record();
        // Live migration: b gets the image, an empty snapshot, sized disks, the context copy.
        nodes
            .prepare_live_migration(&a, &b, 3, &record, &cache, &report)
            .unwrap();
        assert_eq!(std::fs::read(b.cache_image("IMG")).unwrap(), data);
        assert_eq!(std::fs::metadata(b.disk(3, 1)).unwrap().len(), 4 << 20);
        assert_eq!(std::fs::read(b.disk(3, 3)).unwrap(), b"context");
        nodes.remove_vm(&b, 3).unwrap();
        // Cold moves: node to front-end, front-end to node, node to node.
        std::fs::write(a.home(3).join("checkpoint"), b"memory").unwrap();
        // A disk a hypervisor copied (live migration): every zero block allocated. It arrives
        // sparse, its contents unchanged.
        let mut copied = vec![0u8; 4 << 20];
        copied[2 << 20..(2 << 20) + 6].copy_from_slice(b"marker");
        std::fs::write(a.disk(3, 4), &copied).unwrap();
        nodes
            .copy_vm(
                Place::Node(&a),
                Place::FrontEnd(&dir.join("front")),
                &["3".into()],
                &report,
            )
            .unwrap();
        assert_eq!(
            std::fs::read(paths.home.join("checkpoint")).unwrap(),
            b"memory"
        );
        assert!(
            paths.record_path().exists(),
            "the front-end's own files stay"
        );
        let fs_disk = std::fs::metadata(paths.disk(2)).unwrap();
        assert_eq!(fs_disk.len(), 4 << 20);
        use std::os::unix::fs::MetadataExt;
        assert!(fs_disk.blocks() * 512 < 4 << 20, "sparse files stay sparse");
        let allocated = std::fs::metadata(paths.disk(4)).unwrap();
        assert!(
            allocated.blocks() * 512 < 1 << 20,
            "zero blocks are not moved: {} blocks",
            allocated.blocks()
        );
        assert_eq!(std::fs::read(paths.disk(4)).unwrap(), copied);
        assert_eq!(std::fs::read(a.disk(3, 4)).unwrap(), copied);
        nodes
            .copy_vm(
                Place::FrontEnd(&dir.join("front")),
                Place::Node(&b),
                &["3/images".into(), "3/checkpoint".into()],
                &report,
            )
            .unwrap();
        assert_eq!(std::fs::read(b.disk(3, 3)).unwrap(), b"context");
        let snapshots = snapshot_disks(&record, &cache).unwrap();
        assert_eq!(
            snapshots,
            [SnapshotDisk {
                index: 0,
                image: "IMG".into(),
                format: "raw".into()
            }]
        );
        nodes.rebase_snapshots(&b, 3, &snapshots).unwrap();
        let info = Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(b.disk(3, 0))
            .output()
            .unwrap();
        let info = String::from_utf8_lossy(&info.stdout);
        assert!(
            info.contains(b.cache_image("IMG").to_str().unwrap()),
            "{info}"
        );
        nodes.remove_vm(&a, 3).unwrap();
        nodes
            .copy_vm(Place::Node(&b), Place::Node(&a), &["3".into()], &report)
            .unwrap();
        assert_eq!(
            std::fs::read(a.home(3).join("checkpoint")).unwrap(),
            b"memory"
        );
        // The bytes come back whole.
        let back = dir.join("back");
        nodes.fetch(&a, &a.disk(3, 1), &back, &report).unwrap();
        assert_eq!(std::fs::read(&back).unwrap(), swap);
        // Quarantine on the node, purged later.
        let q = nodes.quarantine_vm(&a, 3, 1234).unwrap().unwrap();
        assert_eq!(q, a.vm_dir.join("quarantine/3.1234"));
        assert!(!a.home(3).exists() && q.join("images/disk.0").exists());
        assert_eq!(nodes.quarantine_vm(&a, 3, 1235).unwrap(), None);
        nodes.purge("node-a", &q).unwrap();
        assert!(!q.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
