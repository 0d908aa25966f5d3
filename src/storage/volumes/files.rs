//! Volumes as files under the volume directory: `<dir>/<uuid>` (sparse raw) or
//! `<dir>/<uuid>.qcow2`. A new raw volume is a sparse file of its size: creating 10 GiB writes
//! nothing. Files appear under their final name only once complete.

use super::GIB;
use crate::model::volume::Backing;
use crate::storage::cache::{copy_hashing, hex};
use crate::storage::cow::QEMU_IMG;
use crate::storage::{layout, Result, StorageError};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

/// Files are private to the daemon and the hypervisor (StratusLab removed world access).
const MODE: u32 = 0o660;

pub fn backing(dir: &Path, uuid: &str, format: &str) -> Backing {
    let name = if format == "qcow2" {
        format!("{uuid}.qcow2")
    } else {
        uuid.to_string()
    };
    Backing::File {
        path: dir.join(name).display().to_string(),
        format: format.to_string(),
    }
}

fn ensure_parent(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(StorageError::io(format!("cannot create {}", dir.display())))?;
    }
    Ok(())
}

fn place(tmp: &Path, path: &Path) -> Result<()> {
    layout::set_mode(tmp, MODE)?;
    // Never over an existing volume: the UUID is new, so one there is a bug or an intrusion.
    if path.exists() {
        return Err(StorageError::BadValue(format!(
            "{} already exists",
            path.display()
        )));
    }
    std::fs::rename(tmp, path).map_err(StorageError::io(format!("cannot place {}", path.display())))
}

fn qemu_img(args: &[&std::ffi::OsStr], what: &str) -> Result<()> {
    crate::storage::cow::run(Command::new(QEMU_IMG).args(args), what)
}

/// An empty volume: a sparse raw file, or an empty qcow2 image.
pub fn create(path: &Path, format: &str, size_gib: u64) -> Result<()> {
    ensure_parent(path)?;
    let tmp = layout::temp_path(path);
    let made = if format == "qcow2" {
        qemu_img(
            &[
                "create".as_ref(),
                "-q".as_ref(),
                "-f".as_ref(),
                "qcow2".as_ref(),
                tmp.as_os_str(),
                format!("{size_gib}G").as_ref(),
            ],
            "cannot create the volume",
        )
    } else {
        std::fs::File::create_new(&tmp)
            .and_then(|f| f.set_len(size_gib * GIB))
            .map_err(StorageError::io(format!("cannot create {}", tmp.display())))
    };
    let result = made.and_then(|_| place(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes everything `source` (of `format`) shows as a new raw file at `to`.
pub fn flatten(source: &Path, format: &str, to: &Path) -> Result<()> {
    ensure_parent(to)?;
    let tmp = layout::temp_path(to);
    let result =
        crate::storage::cow::flatten_to_raw(source, format, &tmp).and_then(|_| place(&tmp, to));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Fills a new raw file from `content`, sparse where it is zero; refused when it does not fit.
pub fn fill(path: &Path, size_gib: u64, content: &mut (dyn Read + Send)) -> Result<(u64, String)> {
    ensure_parent(path)?;
    let tmp = layout::temp_path(path);
    let limit = size_gib * GIB;
    let result = std::fs::File::create_new(&tmp)
        .and_then(|mut f| {
            let copied = copy_hashing(content, &mut f, Some(limit), "Filling the volume", None)?;
            if !copied.oversized {
                f.set_len(limit)?;
                f.sync_all()?;
            }
            Ok(copied)
        })
        .map_err(StorageError::io(format!("cannot write {}", tmp.display())))
        .and_then(|copied| {
            if copied.oversized {
                return Err(StorageError::BadValue(format!(
                    "the content is larger than the volume ({size_gib} GiB)"
                )));
            }
            place(&tmp, path)?;
            Ok((copied.bytes, copied.sha1))
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes `content` at the start of a block device (already zeroed), checking it fits.
pub fn write_device(
    device: &Path,
    size_gib: u64,
    content: &mut (dyn Read + Send),
) -> Result<(u64, String)> {
    use sha1::Digest;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .open(device)
        .map_err(StorageError::io(format!(
            "cannot open {}",
            device.display()
        )))?;
    let limit = size_gib * GIB;
    let mut hasher = sha1::Sha1::new();
    let mut buf = vec![0u8; 4 << 20];
    let mut total = 0u64;
    loop {
        let n = content
            .read(&mut buf)
            .map_err(StorageError::io("cannot read the content"))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > limit {
            return Err(StorageError::BadValue(format!(
                "the content is larger than the volume ({size_gib} GiB)"
            )));
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(StorageError::io(format!(
            "cannot write {}",
            device.display()
        )))?;
    }
    out.sync_all().map_err(StorageError::io(format!(
        "cannot write {}",
        device.display()
    )))?;
    Ok((total, hex(&hasher.finalize())))
}

/// Copies everything `source` shows onto a block device (through a raw staging file when the
/// source is qcow2).
pub fn copy_into_device(source: &Path, format: &str, device: &Path, staging: &Path) -> Result<()> {
    crate::storage::cow::flatten_to_raw(source, format, device).or_else(|_| {
        let tmp = staging.join(format!(".copy-{:016x}.raw", rand::random::<u64>()));
        let result = crate::storage::cow::flatten_to_raw(source, format, &tmp).and_then(|_| {
            let mut from = std::fs::File::open(&tmp)
                .map_err(StorageError::io(format!("cannot read {}", tmp.display())))?;
            let size = std::fs::metadata(&tmp).map(|m| m.len()).unwrap_or(0);
            write_device(device, size.div_ceil(GIB).max(1), &mut from).map(|_| ())
        });
        let _ = std::fs::remove_file(&tmp);
        result
    })
}

/// Removes a volume file; already gone is fine.
pub fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StorageError::Io {
            what: format!("cannot remove {}", path.display()),
            source: e,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "volumes-files-{tag}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn sparse_raw_volumes() {
        use std::os::unix::fs::MetadataExt;
        let d = dir("raw");
        let Backing::File { path, format } =
            backing(&d, "48ac4190-9a11-4a06-8bef-03fd97080eba", "raw")
        else {
            panic!()
        };
        assert_eq!(format, "raw");
        let path = std::path::PathBuf::from(path);
        create(&path, "raw", 10).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 10 * GIB);
        assert!(meta.blocks() < 64, "sparse: {} blocks", meta.blocks());
        assert_eq!(meta.mode() & 0o777, MODE);
        assert!(
            create(&path, "raw", 1).is_err(),
            "never over an existing volume"
        );
        remove(&path).unwrap();
        remove(&path).unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn filled_volumes_refuse_content_that_does_not_fit() {
        let d = dir("fill");
        let path = d.join("48ac4190-9a11-4a06-8bef-03fd97080eba");
        let mut content: &[u8] = b"hello volume";
        let (bytes, sha1) = fill(&path, 1, &mut content).unwrap();
        assert_eq!(bytes, 12);
        use sha1::Digest;
        assert_eq!(sha1, hex(&sha1::Sha1::digest(b"hello volume")));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), GIB);
        let data = std::fs::read(&path).unwrap();
        assert_eq!(&data[..12], b"hello volume");
        let mut big = std::io::repeat(7).take(GIB + 1);
        let other = d.join("58ac4190-9a11-4a06-8bef-03fd97080eba");
        assert!(fill(&other, 1, &mut big).is_err());
        assert!(!other.exists());
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            1,
            "no temporary left"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
