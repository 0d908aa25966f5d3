//! one.image.* operations and the image repository copy (3.2's `fs` image driver).

use super::auth::Caller;
use super::authz::AuthItem;
use super::command::Answer;
use super::messages::{AllocDetail, DriverReason, EventError, Refusal};
use super::outbox::{Intent, IntentId, Pending};
use super::owned::{self, get_authorized};
use super::{Change, Command, Core, Error, Result, Shared, State, Tx};
use crate::model::acl::Op;
use crate::model::image::{ImageState, ImageType};
use crate::model::{now, Image, Kind, Oid, Permissions};
use crate::template::{self, Template};
use std::path::{Path, PathBuf};

/// Why an image copy into the repository failed (the image goes to ERROR with 3.2's message;
/// this is logged).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{0} is not a file of the image repository")]
    NotInRepository(PathBuf),
    #[error(transparent)]
    Confined(#[from] crate::storage::confined::ConfinedError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the image was deleted while its copy ran")]
    Abandoned,
}

/// A copy under way looks this often (in bytes) whether its image is still wanted: a LOCKED
/// image deleted meanwhile frees its copy thread within this much more I/O.
const COPY_WANTED_EVERY: u64 = 16 << 20;

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> CopyError + '_ {
    move |source| CopyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Removes a file of ours, if it is there (logged when it cannot be).
fn remove_if_there(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(error = %e, "could not remove {}", path.display()),
    }
}

/// Copies `from` into `out` in large pieces (an image may be many GiB), its progress published
/// as long work (`long_work_*{kind="image_repository_copy"}`) and logged every few seconds.
fn copy_with_progress(
    image: Oid,
    (from, from_path): (std::fs::File, &Path),
    (out, out_path): (&mut std::fs::File, &Path),
    still_wanted: impl Fn() -> bool,
) -> std::result::Result<u64, CopyError> {
    use std::io::{Read, Write};
    let total = from.metadata().map(|m| m.len()).unwrap_or(0);
    let mut from = crate::metrics::ProgressReader::new(
        from,
        "image_repository_copy",
        &format!("image {image}"),
        total,
    );
    let mut buf = vec![0u8; 1 << 20];
    let mut next_look = COPY_WANTED_EVERY;
    loop {
        if from.done() >= next_look {
            if !still_wanted() {
                return Err(CopyError::Abandoned);
            }
            next_look = from.done() + COPY_WANTED_EVERY;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(from.done()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_at(from_path)(e)),
        };
        out.write_all(&buf[..n]).map_err(io_at(out_path))?;
    }
}

fn alloc_err(detail: AllocDetail) -> Error {
    Error::alloc(Kind::Image, detail)
}

/// 3.2's repository names: md5 of `"<time>:<image id>"`.
pub fn repository_name(id: Oid) -> String {
    // The command's time when the core's owner applies one (a replay gives the same name).
    let nanos = crate::model::now_nanos();
    let digest = sha1_smol::Sha1::from(format!("{nanos}:{id}"))
        .digest()
        .to_string();
    digest[..32].to_string()
}

impl Command {
    /// `one.image.allocate` of a text (a parse error first, as in 3.2).
    pub fn image_allocate(caller: &Caller, text: &str) -> Result<Command> {
        let mut tmpl = template::parse(text).map_err(|e| Error::AllocateParse {
            kind: Kind::Image,
            message: e.message,
        })?;
        // Image templates keep the last copy of a repeated attribute (3.2's ImageTemplate).
        tmpl.keep_last_copies();
        Ok(Command::ImageAllocate {
            caller: caller.clone(),
            template: tmpl,
        })
    }
}

impl Core {
    /// `one.image.allocate`: the new image's id. An image with a PATH (or a new datablock) is
    /// LOCKED with a `CopyImage` intent in the same commit; the copy runs after the answer
    /// ([`Core::carry_out_copy`]).
    pub fn image_allocate(&self, caller: &Caller, text: &str) -> Result<Oid> {
        self.execute(Command::image_allocate(caller, text)?)
            .and_then(Answer::id)
    }

    /// Carries out the `CopyImage` intents queued, one after the other on the calling thread
    /// (tests and tools; the daemon runs them on its copy threads, `workers::copies`).
    /// Returns how many were carried out.
    pub fn carry_out_copy_intents(&self) -> usize {
        let mut carried = 0;
        loop {
            let batch = self.outbox().take(super::outbox::Lane::Copies, 16);
            if batch.is_empty() {
                return carried;
            }
            for p in batch {
                if let Err(e) = self.carry_out_copy(&p) {
                    tracing::error!(intent = p.id, error = %e, "an image copy's outcome not recorded");
                }
                carried += 1;
            }
        }
    }

    /// Carries out a `CopyImage` intent (blocking I/O: call it off the async runtime): only
    /// while its image is still LOCKED with that PATH, the copy runs from scratch into the
    /// temporary file, which is renamed into place; the outcome (READY with SOURCE and SIZE,
    /// or ERROR with 3.2's message in TEMPLATE/ERROR) is committed with the intent marked
    /// done. An intent whose image is gone or decided is dropped (its temporary file too).
    /// An outcome not committed leaves the intent for the next start.
    pub fn carry_out_copy(&self, p: &Pending) -> Result<()> {
        let Intent::CopyImage {
            image,
            from,
            to,
            confined,
        } = &p.intent
        else {
            return Ok(());
        };
        let image = *image;
        let to_path = Path::new(to);
        if !self.copy_wanted(image, Path::new(from)) {
            if self.is_repository_file(to) {
                remove_if_there(&super::outbox::copy_temporary(to_path));
            }
            tracing::info!(
                image,
                "image copy dropped: its image is gone or no longer LOCKED"
            );
            return self
                .execute(Command::IntentsDone { ids: vec![p.id] })?
                .done();
        }
        if p.replayed {
            tracing::info!(image, "image copy interrupted by a restart runs again");
        }
        let outcome = self.copy_into_repository(image, Path::new(from), to_path, *confined);
        if let Err(e) = &outcome {
            tracing::warn!(image, error = %e, "image copy failed");
        }
        self.execute(Command::ImageCopied {
            intent: p.id,
            image,
            from: from.clone(),
            to: to.clone(),
            outcome: outcome.map_err(|e| e.to_string()),
        })?
        .done()
    }

    /// Whether image `image` still waits for its copy from `from` (LOCKED with that PATH).
    fn copy_wanted(&self, image: Oid, from: &Path) -> bool {
        self.read()
            .images
            .get(&image)
            .is_some_and(|img| img.state == ImageState::Locked && Path::new(&img.path) == from)
    }

    /// One run of a copy: the source is checked (again, on a replay) as the allocation checked
    /// it, the destination must be a file directly in the repository; the bytes go to the
    /// temporary file, synced, then renamed to `to`.
    fn copy_into_repository(
        &self,
        image: Oid,
        from: &Path,
        to: &Path,
        confined: bool,
    ) -> std::result::Result<u64, CopyError> {
        let repo = self.settings.image_repo_dir();
        let plain_name = to
            .file_name()
            .is_some_and(|n| !n.to_string_lossy().starts_with('.'));
        if to.parent() != Some(repo.as_path()) || !plain_name {
            return Err(CopyError::NotInRepository(to.to_path_buf()));
        }
        std::fs::create_dir_all(&repo).map_err(io_at(&repo))?;
        let tmp = super::outbox::copy_temporary(to);
        let written = (|| {
            let mut out = std::fs::File::create(&tmp).map_err(io_at(&tmp))?;
            let bytes = if from.as_os_str().is_empty() {
                // A datablock made from SIZE/FSTYPE: an empty file.
                0
            } else {
                tracing::info!(image, from = %from.display(), to = %to.display(), "copying image into the repository");
                let source = if confined {
                    crate::storage::confined::open_beneath(&self.settings.image_import_dirs, from)?
                } else {
                    std::fs::File::open(from).map_err(io_at(from))?
                };
                copy_with_progress(image, (source, from), (&mut out, &tmp), || {
                    self.copy_wanted(image, from)
                })?
            };
            out.sync_all().map_err(io_at(&tmp))?;
            std::fs::rename(&tmp, to).map_err(io_at(to))?;
            // The rename reaches the disk before the commit that makes the image READY (a
            // power cut must not leave a READY image without its file).
            std::fs::File::open(&repo)
                .and_then(|d| d.sync_all())
                .map_err(io_at(&repo))?;
            Ok(bytes)
        })();
        if written.is_err() {
            remove_if_there(&tmp);
        }
        written
    }

    /// Removes the temporary files of image copies left in the repository (a crash during a
    /// copy); run at start, before any copy runs. Returns how many were removed.
    pub fn remove_copy_temporaries(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(self.settings.image_repo_dir()) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let temporary = path.extension().is_some_and(|e| e == "part");
            if temporary && entry.file_type().is_ok_and(|t| t.is_file()) {
                remove_if_there(&path);
                removed += 1;
            }
        }
        removed
    }

    pub fn image_delete(&self, caller: &Caller, id: Oid) -> Result<Oid> {
        let answer = self.execute(Command::ImageDelete {
            caller: caller.clone(),
            id,
        })?;
        self.image_deleted(id, answer)
    }

    /// After [`Command::ImageDelete`]: its answer. The image's file was removed by the
    /// command's `RemoveImageFile` intent, after the commit and before this.
    pub fn image_deleted(&self, id: Oid, answer: Answer) -> Result<Oid> {
        answer.source()?;
        Ok(id)
    }

    /// Carries out a `RemoveImageFile` intent: the file goes (already gone is done), then the
    /// entry is marked done.
    pub(super) fn remove_image_file(&self, p: &Pending) -> Result<()> {
        if let Intent::RemoveImageFile { image, source } = &p.intent {
            match std::fs::remove_file(source) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    // Left in the repository; the entry is done all the same (a file that
                    // cannot be removed would otherwise be retried at every start).
                    tracing::warn!(image = *image, error = %e, "could not remove repository file {source}");
                }
            }
        }
        self.execute(Command::IntentsDone { ids: vec![p.id] })?
            .done()
    }

    pub fn image_info(&self, caller: &Caller, id: Oid) -> Result<String> {
        let state = self.read();
        let img = get_authorized::<Image>(&state, caller, id, Op::Use)?;
        let mut out = String::with_capacity(1024);
        img.write_xml(&mut out);
        Ok(out)
    }

    pub fn image_update(&self, caller: &Caller, id: Oid, text: &str) -> Result<Oid> {
        self.execute(Command::ImageUpdate {
            caller: caller.clone(),
            id,
            text: text.into(),
        })
        .and_then(Answer::id)
    }

    pub fn image_persistent(&self, caller: &Caller, id: Oid, persistent: bool) -> Result<Oid> {
        self.execute(Command::ImagePersistent {
            caller: caller.clone(),
            id,
            persistent,
        })
        .and_then(Answer::id)
    }

    pub fn image_enable(&self, caller: &Caller, id: Oid, enable: bool) -> Result<Oid> {
        self.execute(Command::ImageEnable {
            caller: caller.clone(),
            id,
            enable,
        })
        .and_then(Answer::id)
    }

    pub fn image_chtype(&self, caller: &Caller, id: Oid, type_name: &str) -> Result<Oid> {
        self.execute(Command::ImageChtype {
            caller: caller.clone(),
            id,
            type_name: type_name.into(),
        })
        .and_then(Answer::id)
    }

    pub fn imagepool_info(
        &self,
        caller: &Caller,
        flag: i32,
        start: i32,
        end: i32,
    ) -> Result<String> {
        let state = self.read();
        owned::pool_document::<Image>(
            &state,
            caller,
            (flag, start, end),
            "IMAGE_POOL",
            |img, out| img.write_xml(out),
        )
    }
}

impl Shared {
    /// Whether `path` names a file inside our image repository, the only files stratusd
    /// removes on an image's behalf (a SOURCE elsewhere is the site's; `..` could climb out).
    fn is_repository_file(&self, path: &str) -> bool {
        !path.is_empty()
            && !path.split('/').any(|c| c == "..")
            && Path::new(path).starts_with(self.settings.image_repo_dir())
    }

    fn may_import(&self, caller: &Caller, path: &str) -> bool {
        if caller.is_privileged() {
            return true;
        }
        // Ordinary users may only register files from the site's import directories: a path
        // elsewhere would let them read any file of the front-end through a VM disk.
        let p = Path::new(path);
        p.is_absolute()
            && !path.split('/').any(|c| c == "..")
            && self
                .settings
                .image_import_dirs
                .iter()
                .any(|d| p.starts_with(d))
    }

    pub(super) fn apply_image_allocate(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        template: &Template,
    ) -> Result<Oid> {
        let mut tmpl = template.clone();
        let repo = self.settings.image_repo_dir();

        state.authorize(caller, &[AuthItem::create(Kind::Image)])?;
        let name = tmpl.get("NAME").unwrap_or("").to_string();
        if name.is_empty() {
            return Err(alloc_err(AllocDetail::NameEmpty));
        }
        let taken = (state.images.values()).find(|i| i.uid == caller.uid && i.name == name);
        Error::check_new_name(Kind::Image, "IMAGE", &name, taken.map(|i| i.id))?;
        if !caller.is_privileged() && tmpl.get("SOURCE").is_some() {
            return Err(alloc_err(AllocDetail::RestrictedImageSource));
        }
        let image_type = match tmpl.get("TYPE") {
            None => ImageType::Os,
            Some(t) => {
                ImageType::parse(t).ok_or_else(|| alloc_err(AllocDetail::IncorrectImageType))?
            }
        };
        let path = tmpl.get("PATH").unwrap_or("").to_string();
        let source = tmpl.get("SOURCE").unwrap_or("").to_string();
        let size_fs = tmpl.get("SIZE").is_some() && tmpl.get("FSTYPE").is_some();
        if path.is_empty() && source.is_empty() {
            if image_type == ImageType::Datablock {
                if !size_fs {
                    return Err(alloc_err(AllocDetail::DatablockNeedsPath));
                }
            } else {
                return Err(alloc_err(AllocDetail::NoPath));
            }
        }
        let size = match tmpl.get("SIZE") {
            Some(s) => s
                .trim()
                .parse::<i64>()
                .map_err(|_| alloc_err(AllocDetail::WrongSize))?,
            None => 0,
        };
        if !path.is_empty() && !source.is_empty() {
            return Err(alloc_err(AllocDetail::PathAndSource));
        }
        if !path.is_empty() && !self.may_import(caller, &path) {
            return Err(alloc_err(AllocDetail::PathNotImportable(path.clone())));
        }
        let persistent = tmpl
            .get("PERSISTENT")
            .is_some_and(|p| p.eq_ignore_ascii_case("YES"));
        let fstype = tmpl.get("FSTYPE").unwrap_or("").to_string();
        for key in [
            "NAME",
            "TYPE",
            "PATH",
            "SOURCE",
            "SIZE",
            "FSTYPE",
            "PERSISTENT",
            "PUBLIC",
        ] {
            tmpl.remove(key);
        }
        if tmpl.get("DEV_PREFIX").is_none() {
            tmpl.set_single("DEV_PREFIX", &self.settings.default_device_prefix);
        }
        let user = super::users::get(state, caller.uid)?;
        let confined = !caller.is_privileged();
        Error::check_xml(
            Kind::Image,
            &[&name, &user.name, &user.gname, &source, &path, &fstype],
            Some(&tmpl),
        )?;
        let id = tx.alloc_id(state, Kind::Image);
        let state_now = if !source.is_empty() {
            ImageState::Ready
        } else {
            // A copy of PATH, or a datablock made from SIZE/FSTYPE (an empty file), into the
            // repository after the commit; the image is LOCKED until its outcome.
            let to = repo.join(repository_name(id));
            tx.intend(Intent::CopyImage {
                image: id,
                from: path.clone(),
                to: to.to_string_lossy().to_string(),
                confined,
            });
            ImageState::Locked
        };
        tx.put(Change::Image(Image {
            id,
            uid: caller.uid,
            gid: user.gid,
            uname: user.name.clone(),
            gname: user.gname.clone(),
            name,
            perms: Permissions::default(),
            image_type,
            persistent,
            regtime: now(),
            source,
            path,
            fstype,
            size,
            state: state_now,
            running_vms: 0,
            template: tmpl.clone(),
        }));
        Ok(id)
    }

    /// A `CopyImage` intent's outcome, committed with the intent marked done: the LOCKED
    /// image READY (SOURCE, SIZE when it had none) or ERROR. An image deleted while its copy
    /// ran keeps no file: the copied file is removed after this commit (`RemoveImageFile`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_image_copied(
        &self,
        state: &State,
        tx: &mut Tx,
        intent: IntentId,
        image: Oid,
        from: &str,
        to: &str,
        outcome: &std::result::Result<u64, String>,
    ) -> Result<()> {
        tx.intent_done(intent);
        let img = match state.images.get(&image) {
            Some(img) if img.state == ImageState::Locked => img,
            other => {
                let kept = other.is_some_and(|img| img.source == to);
                if outcome.is_ok() && !kept && self.is_repository_file(to) {
                    tx.intend(Intent::RemoveImageFile {
                        image,
                        source: to.to_string(),
                    });
                }
                return Ok(());
            }
        };
        let mut img = img.clone();
        match &outcome {
            Ok(bytes) => {
                img.source = to.to_string();
                if img.size == 0 {
                    img.size = (*bytes / (1024 * 1024)) as i64;
                }
                img.state = ImageState::Ready;
                tracing::info!(image = img.id, bytes, "image ready");
            }
            Err(e) => {
                let message = EventError::CopyImage(DriverReason::Copy {
                    from: from.to_string(),
                    to: to.to_string(),
                });
                tracing::warn!(image = img.id, error = %e, "{message}");
                super::lifecycle::set_template_error(&mut img.template, &message);
                img.state = ImageState::Error;
            }
        }
        tx.put(Change::Image(img));
        Ok(())
    }

    pub(super) fn apply_image_delete(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
    ) -> Result<String> {
        let img = get_authorized::<Image>(state, caller, id, Op::Manage)?;
        // 3.2 refuses a USED image, or a READY one still counted in use; an image in any
        // other state goes, whatever its count.
        let in_use = img.state == ImageState::Used
            || (img.state == ImageState::Ready && img.running_vms > 0);
        if in_use {
            return Err(Error::request(Refusal::DeleteUsedImage));
        }
        tx.delete(Kind::Image, id);
        // Only files inside our repository are ours to remove; they go after the commit.
        let source = img.source.clone();
        if self.is_repository_file(&source) {
            tx.intend(Intent::RemoveImageFile {
                image: id,
                source: source.clone(),
            });
        }
        Ok(source)
    }

    pub(super) fn apply_image_update(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
        text: &str,
    ) -> Result<Oid> {
        let img = get_authorized::<Image>(state, caller, id, Op::Manage)?;
        let mut tmpl: Template = super::users::parse_update(text)?;
        tmpl.keep_last_copies();
        let mut img = img.clone();
        img.template = tmpl;
        tx.put(Change::Image(img));
        Ok(id)
    }

    pub(super) fn apply_image_persistent(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
        persistent: bool,
    ) -> Result<Oid> {
        let img = get_authorized::<Image>(state, caller, id, Op::Manage)?;
        let what = if persistent {
            "persistent"
        } else {
            "non-persistent"
        };
        // Decided by the count of VMs using it, not by the state.
        if img.running_vms > 0 {
            return Err(Error::request(Refusal::PersistentUsed(what)));
        }
        if persistent && (img.perms.group_u || img.perms.other_u) {
            return Err(Error::request(Refusal::PersistentPublic));
        }
        let mut img = img.clone();
        img.persistent = persistent;
        tx.put(Change::Image(img));
        Ok(id)
    }

    pub(super) fn apply_image_enable(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
        enable: bool,
    ) -> Result<Oid> {
        let img = get_authorized::<Image>(state, caller, id, Op::Manage)?;
        let mut img = img.clone();
        match (enable, img.state) {
            // ERROR becomes READY without the failed copy being tried again, as in 3.2.
            (true, ImageState::Disabled | ImageState::Error | ImageState::Ready) => {
                img.state = ImageState::Ready
            }
            (false, ImageState::Ready | ImageState::Error | ImageState::Disabled) => {
                img.state = ImageState::Disabled
            }
            (true, _) => return Err(Error::request(Refusal::EnableImage)),
            (false, _) => return Err(Error::request(Refusal::DisableImage)),
        }
        tx.put(Change::Image(img));
        Ok(id)
    }

    pub(super) fn apply_image_chtype(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
        type_name: &str,
    ) -> Result<Oid> {
        let img = get_authorized::<Image>(state, caller, id, Op::Manage)?;
        let t = ImageType::parse(type_name)
            .ok_or_else(|| Error::request(Refusal::UnknownImageType(type_name.to_uppercase())))?;
        let mut img = img.clone();
        img.image_type = t;
        tx.put(Change::Image(img));
        Ok(id)
    }
}
