//! Per-VM copy-on-write snapshots of cached images: a qcow2 overlay whose backing file is the
//! cached image (StratusLab's `MACHINE_IMAGE_LIVE` snapshot, hooks §3.2 step 4). Creating one
//! writes only the qcow2 header, whatever the image size; the guest's writes go to the overlay.

use super::{layout, Result, StorageError};
use std::path::Path;
use std::process::Command;

/// The program that makes and converts disk images (Debian's `qemu-utils`).
pub const QEMU_IMG: &str = "qemu-img";

/// Runs a `qemu-img` command; its failure is the tool's first line of error output.
pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .output()
        .map_err(|e| StorageError::Tool(format!("{what}: cannot run {QEMU_IMG}: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(StorageError::Tool(format!(
            "{what}: {}",
            stderr.lines().next().unwrap_or("qemu-img failed").trim()
        )));
    }
    Ok(())
}

/// Refuses an image of `format` whose header names another file: a backing file, or a qcow2
/// external data file. QEMU would open that file of the node for every VM of the image (and a
/// saved image would carry its content away). Raw images name nothing.
pub fn check_no_backing_file(image: &Path, format: &str) -> Result<()> {
    if format == "raw" {
        return Ok(());
    }
    let info = header(image, format)?;
    let named = info
        .get("backing-filename")
        .or_else(|| info.pointer("/format-specific/data/data-file"));
    match named {
        Some(file) => Err(StorageError::BadValue(format!(
            "the {format} image names another file ({file}); images with a backing or data file are refused"
        ))),
        None => Ok(()),
    }
}

/// The size of the disk a guest sees in `image` of `format`: a raw file's length, or the
/// virtual size in the header (`qemu-img info`).
pub fn virtual_size(image: &Path, format: &str) -> Result<u64> {
    if format == "raw" {
        return std::fs::metadata(image)
            .map(|m| m.len())
            .map_err(StorageError::io(format!("cannot read {}", image.display())));
    }
    header(image, format)?
        .get("virtual-size")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| StorageError::Tool(format!("the {format} header has no virtual size")))
}

/// `qemu-img info` of `image`, read as `format` (never probed).
fn header(image: &Path, format: &str) -> Result<serde_json::Value> {
    let out = Command::new(QEMU_IMG)
        .args(["info", "-U", "--output=json", "-f", format])
        .arg(image)
        .output()
        .map_err(|e| StorageError::Tool(format!("cannot run {QEMU_IMG}: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(StorageError::Tool(format!(
            "cannot read the {format} header: {}",
            stderr.lines().next().unwrap_or("qemu-img failed").trim()
        )));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| StorageError::Tool(format!("cannot read the {format} header: {e}")))
}

/// Creates `overlay` as a qcow2 image backed by `backing` (of format `backing_format`). The
/// overlay appears atomically; the backing path is absolute so the overlay works from anywhere.
pub fn create_overlay(backing: &Path, backing_format: &str, overlay: &Path) -> Result<()> {
    if !backing.is_absolute() {
        return Err(StorageError::BadValue(format!(
            "backing image {} is not an absolute path",
            backing.display()
        )));
    }
    if let Some(dir) = overlay.parent() {
        std::fs::create_dir_all(dir)
            .map_err(StorageError::io(format!("cannot create {}", dir.display())))?;
    }
    let tmp = layout::temp_path(overlay);
    let result = run(
        Command::new(QEMU_IMG)
            .args(["create", "-q", "-f", "qcow2", "-b"])
            .arg(backing)
            .args(["-F", backing_format])
            .arg(&tmp),
        "cannot create the disk snapshot",
    )
    .and_then(|_| layout::set_mode(&tmp, 0o660))
    .and_then(|_| {
        std::fs::rename(&tmp, overlay).map_err(StorageError::io(format!(
            "cannot place {}",
            overlay.display()
        )))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Points an overlay at another copy of its backing image (same content, another path: the
/// front-end's cache for a snapshot fetched from a node), without reading any data.
pub fn rebase_unsafe(overlay: &Path, backing: &Path, backing_format: &str) -> Result<()> {
    run(
        Command::new(QEMU_IMG)
            .args(["rebase", "-u", "-f", "qcow2", "-b"])
            .arg(backing)
            .args(["-F", backing_format])
            .arg(overlay),
        "cannot point the disk snapshot at the cached image",
    )
}

/// Writes the whole content of a disk (an overlay with its backing chain, or a plain image) as
/// one raw file.
pub fn flatten_to_raw(disk: &Path, format: &str, to: &Path) -> Result<()> {
    run(
        Command::new(QEMU_IMG)
            .args(["convert", "-f", format, "-O", "raw"])
            .arg(disk)
            .arg(to),
        "cannot read the disk",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("cow-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn qemu_img(args: &[&str]) {
        let ok = Command::new(QEMU_IMG)
            .args(args)
            .status()
            .expect("qemu-img runs (scripts/setup.sh --test installs qemu-utils)");
        assert!(ok.success(), "qemu-img {args:?}");
    }

    #[test]
    fn virtual_sizes_of_raw_and_qcow2_images() {
        let dir = scratch("vsize");
        let raw = dir.join("raw.img");
        std::fs::write(&raw, vec![0u8; 65536]).unwrap();
        let q = dir.join("q.qcow2");
        qemu_img(&["create", "-q", "-f", "qcow2", q.to_str().unwrap(), "3M"]);
        assert_eq!(virtual_size(&raw, "raw").unwrap(), 65536);
        assert_eq!(virtual_size(&q, "qcow2").unwrap(), 3 << 20);
        // An overlay has its backing image's size.
        let o = dir.join("o.qcow2");
        create_overlay(&q, "qcow2", &o).unwrap();
        assert_eq!(virtual_size(&o, "qcow2").unwrap(), 3 << 20);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn images_naming_another_file_are_refused() {
        let dir = scratch("backing");
        let plain = dir.join("plain.qcow2");
        let evil = dir.join("evil.qcow2");
        let raw = dir.join("raw.img");
        std::fs::write(&raw, vec![0u8; 65536]).unwrap();
        qemu_img(&["create", "-q", "-f", "qcow2", plain.to_str().unwrap(), "1M"]);
        qemu_img(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            "/etc/hostname",
            "-F",
            "raw",
            evil.to_str().unwrap(),
            "1M",
        ]);
        check_no_backing_file(&plain, "qcow2").unwrap();
        check_no_backing_file(&raw, "raw").unwrap();
        let err = check_no_backing_file(&evil, "qcow2")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/etc/hostname"), "{err}");
        // A raw file declared qcow2 is not a qcow2 image at all.
        assert!(check_no_backing_file(&raw, "qcow2").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
