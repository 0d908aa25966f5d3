//! Opening a file a user named, confined to directories the site chose (image import
//! directories): the path is walked one component at a time from the directory with
//! `openat(O_NOFOLLOW)`, so that no symbolic link below the directory is followed, whatever
//! happens to the tree meanwhile; and the file must be a regular file with one link (a hard
//! link would reach a file outside the directory as surely as a symbolic one).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfinedError {
    #[error("{0} is not under an import directory")]
    Outside(PathBuf),
    #[error("{path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is a symbolic link or goes through one")]
    SymbolicLink(PathBuf),
    #[error("{0} is not a regular file")]
    NotRegular(PathBuf),
    #[error("{0} has more than one hard link")]
    HardLinked(PathBuf),
}

/// The components of `path` below `root`, when `path` is absolute, plain (no `.` or `..`)
/// and under `root`.
fn below<'a>(root: &Path, path: &'a Path) -> Option<Vec<&'a std::ffi::OsStr>> {
    if !path.is_absolute() || !path.starts_with(root) {
        return None;
    }
    let rest = path.strip_prefix(root).ok()?;
    let mut parts = Vec::new();
    for c in rest.components() {
        match c {
            Component::Normal(name) => parts.push(name),
            _ => return None,
        }
    }
    if parts.is_empty() || path.components().any(|c| c == Component::ParentDir) {
        return None;
    }
    Some(parts)
}

fn open_at(dir: &OwnedFd, name: &std::ffi::OsStr, flags: libc::c_int) -> std::io::Result<OwnedFd> {
    let name = CString::new(name.as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: openat with a valid directory descriptor and a NUL-terminated name; the result
    // is a fresh descriptor we own, or -1.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by openat and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn is_symlink_at(dir: &OwnedFd, name: &std::ffi::OsStr) -> bool {
    let Ok(name) = CString::new(name.as_bytes()) else {
        return false;
    };
    // SAFETY: fstatat fills the zeroed stat buffer; the name is NUL-terminated.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        ) == 0
            && (st.st_mode & libc::S_IFMT) == libc::S_IFLNK
    }
}

/// Opens `path` for reading, if it is a regular file under one of `roots` reached without
/// following a symbolic link below that root (the root itself is the site's choice and may
/// be one).
pub fn open_beneath(roots: &[PathBuf], path: &Path) -> Result<File, ConfinedError> {
    let (root, parts) = roots
        .iter()
        .find_map(|r| below(r, path).map(|p| (r, p)))
        .ok_or_else(|| ConfinedError::Outside(path.to_path_buf()))?;
    // A component that cannot be opened: a symbolic link (ELOOP, or ENOTDIR for a link where
    // a directory is expected) is named as such.
    let fail = |dir: &OwnedFd, name: &std::ffi::OsStr, source: std::io::Error| {
        if is_symlink_at(dir, name) {
            ConfinedError::SymbolicLink(path.to_path_buf())
        } else {
            ConfinedError::Open {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let mut dir: OwnedFd = File::open(root)
        .map_err(|source| ConfinedError::Open {
            path: root.clone(),
            source,
        })?
        .into();
    let (last, dirs) = parts
        .split_last()
        .ok_or_else(|| ConfinedError::Outside(path.to_path_buf()))?;
    for name in dirs {
        dir = open_at(
            &dir,
            name,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        )
        .map_err(|e| fail(&dir, name, e))?;
    }
    // O_NONBLOCK: a FIFO must not hang the open; it is refused below anyway.
    let file = File::from(
        open_at(
            &dir,
            last,
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
        )
        .map_err(|e| fail(&dir, last, e))?,
    );
    let meta = file.metadata().map_err(|source| ConfinedError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.file_type().is_file() {
        return Err(ConfinedError::NotRegular(path.to_path_buf()));
    }
    if meta.nlink() > 1 {
        return Err(ConfinedError::HardLinked(path.to_path_buf()));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("confined-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("import/sub")).unwrap();
        std::fs::create_dir_all(dir.join("secret")).unwrap();
        dir
    }

    #[test]
    fn only_plain_regular_files_under_the_root() {
        let dir = scratch();
        let import = dir.join("import");
        let roots = vec![import.clone()];
        std::fs::write(import.join("sub/ok.img"), b"image").unwrap();
        std::fs::write(dir.join("secret/shadow"), b"secret").unwrap();
        std::os::unix::fs::symlink(dir.join("secret/shadow"), import.join("link.img")).unwrap();
        std::os::unix::fs::symlink(dir.join("secret"), import.join("linkdir")).unwrap();
        std::fs::hard_link(dir.join("secret/shadow"), import.join("hard.img")).unwrap();
        std::os::unix::fs::symlink(&import, dir.join("alias")).unwrap();

        let mut text = String::new();
        open_beneath(&roots, &import.join("sub/ok.img"))
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "image");
        let refused = |p: PathBuf| open_beneath(&roots, &p).unwrap_err();
        assert!(matches!(
            refused(import.join("link.img")),
            ConfinedError::SymbolicLink(_)
        ));
        assert!(matches!(
            refused(import.join("linkdir/shadow")),
            ConfinedError::SymbolicLink(_)
        ));
        assert!(matches!(
            refused(import.join("hard.img")),
            ConfinedError::HardLinked(_)
        ));
        assert!(matches!(
            refused(import.join("sub")),
            ConfinedError::NotRegular(_)
        ));
        assert!(matches!(
            refused(import.join("sub/../../secret/shadow")),
            ConfinedError::Outside(_)
        ));
        assert!(matches!(
            refused(dir.join("secret/shadow")),
            ConfinedError::Outside(_)
        ));
        assert!(matches!(refused(import.clone()), ConfinedError::Outside(_)));
        // A root that is itself a link is the site's own choice.
        let via_alias = vec![dir.join("alias")];
        assert!(open_beneath(&via_alias, &dir.join("alias/sub/ok.img")).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
