//! Importing into another directory than oned's var directory: the paths the documents hold
//! under the old directory (history VM_DIR, image SOURCE and PATH, VM disk SOURCE) are
//! rewritten to the data directory, and with `--copy-files` the files themselves are copied.

use super::convert::{holds_resources, Site};
use super::MigrateError;
use std::path::{Path, PathBuf};

pub struct Relocation {
    old: String,
    new: String,
    old_dir: PathBuf,
    new_dir: PathBuf,
}

fn without_slash(p: &Path) -> String {
    let s = p.to_string_lossy().to_string();
    let t = s.trim_end_matches('/');
    if t.is_empty() {
        "/".into()
    } else {
        t.to_string()
    }
}

fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

impl Relocation {
    /// None when the data directory is oned's var directory (in-place migration).
    pub fn new(old_var_dir: &Path, data_dir: &Path) -> Option<Relocation> {
        let (old_dir, new_dir) = (absolute(old_var_dir), absolute(data_dir));
        if old_dir == new_dir {
            return None;
        }
        Some(Relocation {
            old: without_slash(old_var_dir),
            new: without_slash(&new_dir),
            old_dir: old_var_dir.to_path_buf(),
            new_dir,
        })
    }

    /// The path under the new directory, when `text` is a path under the old one.
    pub fn map(&self, text: &str) -> Option<String> {
        let rest = text.strip_prefix(&self.old)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        Some(format!("{}{rest}", self.new))
    }

    fn rewrite(&self, value: &mut String) -> bool {
        match self.map(value) {
            Some(new) => {
                *value = new;
                true
            }
            None => false,
        }
    }

    /// Rewrites the known path fields of every object; other template values that still name
    /// the old directory are reported.
    pub fn rewrite_site(&self, site: &mut Site, warnings: &mut Vec<String>) -> usize {
        let mut n = 0;
        for vm in &mut site.vms {
            for h in &mut vm.history {
                n += usize::from(self.rewrite(&mut h.vm_dir));
            }
            for disk in vm.template.vectors_mut("DISK") {
                for (k, v) in disk.iter_mut() {
                    if k == "SOURCE" {
                        n += usize::from(self.rewrite(v));
                    }
                }
            }
            self.report_leftovers(&format!("VM {}", vm.id), &vm.template, warnings);
        }
        for img in &mut site.images {
            n += usize::from(self.rewrite(&mut img.source));
            n += usize::from(self.rewrite(&mut img.path));
            self.report_leftovers(&format!("image {}", img.id), &img.template, warnings);
        }
        for t in &site.templates {
            self.report_leftovers(&format!("template {}", t.id), &t.template, warnings);
        }
        n
    }

    fn report_leftovers(
        &self,
        what: &str,
        template: &crate::template::Template,
        warnings: &mut Vec<String>,
    ) {
        let mentions = |v: &str| v.contains(&format!("{}/", self.old));
        for a in template.attributes() {
            let hit = match a {
                crate::template::Attribute::Single { value, .. } => mentions(value),
                crate::template::Attribute::Vector { name, pairs } => pairs
                    .iter()
                    .any(|(k, v)| !(name == "DISK" && k == "SOURCE") && mentions(v)),
            };
            if hit {
                warnings.push(format!(
                    "{what}: attribute {} still names {}; it was left as it is",
                    a.name(),
                    self.old
                ));
            }
        }
    }

    /// Copies the image files and the directories of the VMs that are not DONE from the old
    /// directory to the new one (never over an existing file).
    pub fn copy_files(&self, site: &Site, copied: &mut CopiedFiles) -> Result<(), MigrateError> {
        let mut jobs: Vec<(PathBuf, PathBuf)> = Vec::new();
        for img in &site.images {
            // SOURCE is already rewritten: the old file is the same path under the old dir.
            if let Some(rest) = img.source.strip_prefix(&self.new) {
                let from = PathBuf::from(format!("{}{rest}", self.old));
                if from.exists() {
                    jobs.push((from, PathBuf::from(&img.source)));
                } else {
                    tracing::warn!(image = img.id, file = %from.display(), "image file not found, not copied");
                }
            }
        }
        for vm in site.vms.iter().filter(|v| holds_resources(v)) {
            let from = self.old_dir.join(vm.id.to_string());
            if from.is_dir() {
                jobs.push((from, self.new_dir.join(vm.id.to_string())));
            }
        }
        let total = jobs.len();
        for (i, (from, to)) in jobs.into_iter().enumerate() {
            tracing::info!(from = %from.display(), to = %to.display(), "copying ({}/{total})", i + 1);
            copy_tree(&from, &to, copied)?;
        }
        Ok(())
    }
}

fn copy_tree(from: &Path, to: &Path, copied: &mut CopiedFiles) -> Result<(), MigrateError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MigrateError::Io { path, source }
    };
    if to.exists() {
        return Err(MigrateError::Usage(format!(
            "{} already exists: not copying {} over it",
            to.display(),
            from.display()
        )));
    }
    let meta = std::fs::symlink_metadata(from).map_err(io(from))?;
    if meta.is_dir() {
        std::fs::create_dir_all(to).map_err(io(to))?;
        copied.created.push(to.to_path_buf());
        for entry in std::fs::read_dir(from).map_err(io(from))? {
            let entry = entry.map_err(io(from))?;
            copy_tree(&entry.path(), &to.join(entry.file_name()), copied)?;
        }
    } else if meta.file_type().is_symlink() {
        let target = std::fs::read_link(from).map_err(io(from))?;
        std::os::unix::fs::symlink(target, to).map_err(io(to))?;
        copied.created.push(to.to_path_buf());
        copied.files += 1;
    } else {
        if let Some(dir) = to.parent() {
            if !dir.exists() {
                std::fs::create_dir_all(dir).map_err(io(dir))?;
                copied.created.push(dir.to_path_buf());
            }
        }
        std::fs::copy(from, to).map_err(io(to))?;
        copied.created.push(to.to_path_buf());
        copied.files += 1;
    }
    Ok(())
}

/// What a copy created; removed again unless the import completes.
#[derive(Default)]
pub struct CopiedFiles {
    created: Vec<PathBuf>,
    files: usize,
    kept: bool,
}

impl CopiedFiles {
    pub fn count(&self) -> usize {
        self.files
    }

    pub fn keep(&mut self) {
        self.kept = true;
    }
}

impl Drop for CopiedFiles {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        for p in self.created.iter().rev() {
            if p.is_dir() {
                let _ = std::fs::remove_dir(p);
            } else {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_only_paths_under_the_old_directory() {
        let r = Relocation::new(Path::new("/var/lib/one/"), Path::new("/srv/stratusd")).unwrap();
        assert_eq!(r.map("/var/lib/one/").as_deref(), Some("/srv/stratusd/"));
        assert_eq!(
            r.map("/var/lib/one/images/abc").as_deref(),
            Some("/srv/stratusd/images/abc")
        );
        assert_eq!(r.map("/var/lib/one"), Some("/srv/stratusd".into()));
        assert_eq!(r.map("/var/lib/onex/a"), None);
        assert_eq!(r.map("/srv/cloud/images/x"), None);
        assert!(Relocation::new(Path::new("/var/lib/one/"), Path::new("/var/lib/one")).is_none());
    }
}
