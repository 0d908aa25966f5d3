//! Volumes as LVM logical volumes `/dev/<vg>/<uuid>` (pdisk's LVM back end): `lvcreate`,
//! `lvcreate --snapshot` for copy-on-write snapshots, `lvremove` after zeroing the LV (a new LV
//! may be given the extents of a removed one, and must not show its data).
//!
//! The volume group name comes from the site's configuration and LV names are volume UUIDs, so
//! no user text reaches the LVM tools. On a host whose kernel has no device-mapper (LVs cannot
//! be activated: some containers), the tools run with activation disabled, which still creates
//! and removes LVs in the group's metadata; everything that needs an LV's data (VM use,
//! snapshots, content, zeroing) is then refused with [`no_device_mapper`].

use crate::storage::{Result, StorageError};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The message for what needs an active LV on a host without device-mapper.
pub fn no_device_mapper() -> StorageError {
    StorageError::Tool(
        "this host's kernel has no device-mapper: LVM volumes cannot be activated here".into(),
    )
}

/// Whether the kernel offers device-mapper (LVs can be activated).
pub fn device_mapper_available() -> bool {
    std::fs::read_to_string("/proc/misc").is_ok_and(|misc| {
        misc.lines()
            .any(|l| l.split_whitespace().nth(1) == Some("device-mapper"))
    })
}

fn lvm(tool: &str, args: &[&str], what: &str) -> Result<String> {
    let mut cmd = Command::new(tool);
    if !device_mapper_available() {
        cmd.args(["--config", "global { activation = 0 }"]);
    }
    let out = cmd
        .args(args)
        // The daemon's own descriptors are none of LVM's business (it warns about each).
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .output()
        .map_err(|e| StorageError::Tool(format!("{what}: cannot run {tool}: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = stderr
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && !l.starts_with("WARNING"))
            .unwrap_or("failed");
        return Err(StorageError::Tool(format!("{what}: {tool}: {line}")));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn device(vg: &str, lv: &str) -> PathBuf {
    PathBuf::from(format!("/dev/{vg}/{lv}"))
}

/// A new LV of `size_gib` GiB.
pub fn create(vg: &str, lv: &str, size_gib: u64) -> Result<()> {
    let size = format!("{size_gib}G");
    let name_arg = lv.to_string();
    let mut args = vec!["--yes", "-q", "-n", &name_arg, "-L", &size];
    if !device_mapper_available() {
        // Without activation LVM cannot clear the start of the LV or look for signatures.
        args.extend(["-an", "-Zn", "-Wn"]);
    }
    args.push(vg);
    lvm("lvcreate", &args, "cannot create the volume").map(|_| ())
}

/// `new`, a copy-on-write snapshot of `origin` as large as the origin (it can never fill up).
pub fn snapshot(vg: &str, origin: &str, new: &str, size_gib: u64) -> Result<()> {
    if !device_mapper_available() {
        return Err(no_device_mapper());
    }
    let size = format!("{size_gib}G");
    let source = format!("{vg}/{origin}");
    lvm(
        "lvcreate",
        &["--yes", "-q", "-s", "-n", new, "-L", &size, &source],
        "cannot create the snapshot",
    )
    .map(|_| ())
}

/// Runs `f` on the LV's device node, activating the LV first if needed.
pub fn with_active<T>(vg: &str, lv: &str, f: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    activate(vg, lv)?;
    f(&device(vg, lv))
}

/// Makes the LV's device node exist.
pub fn activate(vg: &str, lv: &str) -> Result<PathBuf> {
    if !device_mapper_available() {
        return Err(no_device_mapper());
    }
    let dev = device(vg, lv);
    if !dev.exists() {
        lvm(
            "lvchange",
            &["-q", "-ay", &format!("{vg}/{lv}")],
            "cannot activate the volume",
        )?;
    }
    Ok(dev)
}

/// Writes zeros over the whole device (the kernel's zero-out, fast where the device supports
/// it: discards on a loop device's file, write-zeroes on SSDs).
pub fn zero(device: &Path) -> Result<()> {
    let out = Command::new("blkdiscard")
        .arg("-z")
        .arg(device)
        .output()
        .map_err(|e| StorageError::Tool(format!("cannot zero {}: {e}", device.display())))?;
    if !out.status.success() {
        return Err(StorageError::Tool(format!(
            "cannot zero {}: {}",
            device.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

pub fn exists(vg: &str, lv: &str) -> bool {
    lvm(
        "lvs",
        &["--noheadings", "-o", "lv_name", &format!("{vg}/{lv}")],
        "lvs",
    )
    .is_ok()
}

/// The LV names of the group.
pub fn list(vg: &str) -> Result<Vec<String>> {
    Ok(lvm(
        "lvs",
        &["--noheadings", "-o", "lv_name", vg],
        "cannot list the volumes",
    )?
    .lines()
    .map(|l| l.trim().to_string())
    .filter(|l| !l.is_empty())
    .collect())
}

/// Removes the LV; already gone is fine.
pub fn remove(vg: &str, lv: &str) -> Result<()> {
    if !exists(vg, lv) {
        return Ok(());
    }
    lvm(
        "lvremove",
        &["-q", "-f", &format!("{vg}/{lv}")],
        "cannot remove the volume",
    )
    .map(|_| ())
}

/// Zeroes the LV (when it can be activated), then removes it.
pub fn wipe_and_remove(vg: &str, lv: &str) -> Result<()> {
    if !exists(vg, lv) {
        return Ok(());
    }
    if device_mapper_available() {
        with_active(vg, lv, zero)?;
    }
    remove(vg, lv)
}
