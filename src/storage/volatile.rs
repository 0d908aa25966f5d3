//! Volatile disks made at prolog (hooks §5): `MKSWAP` — a sparse file with a Linux swap
//! signature — and `MKIMAGE` — a sparse file with a fresh file system (`mkfs -t FORMAT`).
//! Permissions are owner/group read-write, nothing for others (StratusLab's patch).

use super::{layout, Result, StorageError};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

const PAGE: u64 = 4096;
const MIB: u64 = 1024 * 1024;
/// File systems `MKIMAGE` accepts (each needs its `mkfs.<name>` on the host).
pub const FILESYSTEMS: &[&str] = &["ext2", "ext3", "ext4", "xfs", "vfat", "btrfs"];

/// The largest volatile disk: 16 TiB (and no size overflows a byte count).
pub const MAX_SIZE_MIB: u64 = 16 * 1024 * 1024;

/// A disk size from the template: MiB, a positive integer up to [`MAX_SIZE_MIB`].
pub fn parse_size_mib(text: &str) -> Result<u64> {
    match text.trim().parse::<u64>() {
        Ok(n) if n > 0 && n <= MAX_SIZE_MIB => Ok(n),
        _ => Err(StorageError::BadValue(format!("invalid disk SIZE {text}"))),
    }
}

fn sparse_file(path: &Path, bytes: u64) -> Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(StorageError::io(format!("cannot create {}", dir.display())))?;
    }
    let f = std::fs::File::create(path).map_err(StorageError::io(format!(
        "cannot create {}",
        path.display()
    )))?;
    f.set_len(bytes)
        .map_err(StorageError::io(format!("cannot size {}", path.display())))?;
    Ok(f)
}

/// The first page of a version-1 Linux swap area (what `mkswap` writes, no bad pages).
pub fn swap_header(bytes: u64, uuid: [u8; 16]) -> Vec<u8> {
    let mut page = vec![0u8; PAGE as usize];
    let last_page = (bytes / PAGE).saturating_sub(1) as u32;
    page[1024..1028].copy_from_slice(&1u32.to_le_bytes()); // version
    page[1028..1032].copy_from_slice(&last_page.to_le_bytes());
    page[1032..1036].copy_from_slice(&0u32.to_le_bytes()); // bad pages
    page[1036..1052].copy_from_slice(&uuid);
    page[PAGE as usize - 10..].copy_from_slice(b"SWAPSPACE2");
    page
}

/// The first page of a new swap area of `size_mib` MiB, with a random UUID.
pub fn new_swap_header(size_mib: u64) -> Vec<u8> {
    let mut uuid: [u8; 16] = rand::random();
    uuid[6] = (uuid[6] & 0x0f) | 0x40; // random UUID, version 4
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    swap_header(size_mib * MIB, uuid)
}

/// The file system name `MKIMAGE` will use, or why not.
pub fn check_filesystem(format: &str) -> Result<String> {
    let format = format.trim().to_ascii_lowercase();
    if FILESYSTEMS.contains(&format.as_str()) {
        Ok(format)
    } else {
        Err(StorageError::BadValue(format!(
            "unsupported file system FORMAT {format}"
        )))
    }
}

pub fn make_swap(path: &Path, size_mib: u64) -> Result<()> {
    let bytes = size_mib * MIB;
    let tmp = layout::temp_path(path);
    let result = (|| {
        let mut f = sparse_file(&tmp, bytes)?;
        f.seek(SeekFrom::Start(0))
            .and_then(|_| f.write_all(&new_swap_header(size_mib)))
            .map_err(StorageError::io(format!("cannot write {}", tmp.display())))?;
        layout::set_mode(&tmp, 0o660)?;
        std::fs::rename(&tmp, path)
            .map_err(StorageError::io(format!("cannot place {}", path.display())))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

pub fn make_filesystem(path: &Path, size_mib: u64, format: &str) -> Result<()> {
    let format = check_filesystem(format)?;
    let tmp = layout::temp_path(path);
    let result = (|| {
        drop(sparse_file(&tmp, size_mib * MIB)?);
        let mut cmd = Command::new("mkfs");
        cmd.args(["-t", &format]);
        if format.starts_with("ext") {
            // Quiet, and no question about formatting a regular file.
            cmd.args(["-q", "-F"]);
        }
        let out = cmd
            .arg(&tmp)
            .output()
            .map_err(|e| StorageError::Tool(format!("cannot run mkfs: {e}")))?;
        if !out.status.success() {
            return Err(StorageError::Tool(format!(
                "mkfs -t {format} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        layout::set_mode(&tmp, 0o660)?;
        std::fs::rename(&tmp, path)
            .map_err(StorageError::io(format!("cannot place {}", path.display())))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn swap_is_sparse_and_signed() {
        let dir = std::env::temp_dir().join(format!("swap-test-{}", std::process::id()));
        let path = dir.join("disk.1");
        make_swap(&path, 64).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 64 * MIB);
        assert!(meta.blocks() * 512 < MIB, "sparse");
        assert_eq!(meta.mode() & 0o777, 0o660);
        let head = std::fs::read(&path).unwrap();
        assert_eq!(&head[4086..4096], b"SWAPSPACE2");
        assert_eq!(
            u32::from_le_bytes(head[1028..1032].try_into().unwrap()),
            (64 * MIB / PAGE - 1) as u32
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sizes_and_formats_are_checked() {
        assert!(parse_size_mib("0").is_err());
        assert!(parse_size_mib("-3").is_err());
        assert_eq!(parse_size_mib(" 512 ").unwrap(), 512);
        assert!(
            parse_size_mib("18446744073709551615").is_err(),
            "bytes would overflow"
        );
        assert_eq!(parse_size_mib("16777216").unwrap(), MAX_SIZE_MIB);
        let err = make_filesystem(Path::new("/nonexistent/x"), 1, "../../bin/sh").unwrap_err();
        assert!(err.to_string().contains("unsupported file system"));
    }
}
