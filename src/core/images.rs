//! one.image.* operations and the image repository copy (3.2's `fs` image driver).

use super::auth::Caller;
use super::authz::AuthItem;
use super::command::Answer;
use super::messages::{AllocDetail, DriverReason, EventError, Refusal};
use super::outbox::{Intent, Pending};
use super::owned::{self, get_authorized};
use super::{Change, Command, Core, Error, Result, Shared, State, Tx};
use crate::model::acl::Op;
use crate::model::image::{ImageState, ImageType};
use crate::model::{now, Image, Kind, Oid, Permissions};
use crate::template::{self, Template};
use std::path::{Path, PathBuf};

/// A repository copy to run after the allocation answered (3.2 copies asynchronously).
#[derive(Debug, Clone)]
pub struct CopyJob {
    pub image: Oid,
    pub from: PathBuf,
    pub to: PathBuf,
    /// For an ordinary user: the import directories `from` must be a regular file under,
    /// reached without a symbolic link (`storage::confined`). oneadmin's group may copy any file.
    pub confined_to: Option<Vec<PathBuf>>,
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
    pub fn image_allocate(&self, caller: &Caller, text: &str) -> Result<(Oid, Option<CopyJob>)> {
        self.execute(Command::image_allocate(caller, text)?)
            .and_then(Answer::image)
    }

    /// Runs a repository copy (blocking I/O: call it off the async runtime) and records the
    /// outcome: READY with SOURCE and SIZE, or ERROR with 3.2's message in TEMPLATE/ERROR.
    pub fn image_copy(&self, job: CopyJob) -> Result<()> {
        let outcome = (|| -> std::io::Result<u64> {
            if let Some(dir) = job.to.parent() {
                std::fs::create_dir_all(dir)?;
            }
            if job.from.as_os_str().is_empty() {
                std::fs::File::create(&job.to)?;
                return Ok(0);
            }
            tracing::info!(image = job.image, from = %job.from.display(), to = %job.to.display(), "copying image into the repository");
            let mut from = match &job.confined_to {
                Some(dirs) => crate::storage::confined::open_beneath(dirs, &job.from)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e))?,
                None => std::fs::File::open(&job.from)?,
            };
            let tmp = job.to.with_extension("part");
            let copied =
                std::fs::File::create(&tmp).and_then(|mut out| std::io::copy(&mut from, &mut out));
            let bytes = match copied {
                Ok(bytes) => bytes,
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
            };
            std::fs::rename(&tmp, &job.to)?;
            Ok(bytes)
        })();
        self.execute(Command::ImageCopied {
            job,
            outcome: outcome.map_err(|e| e.to_string()),
        })
        .and_then(Answer::done)
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
    ) -> Result<(Oid, Option<CopyJob>)> {
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
        let confined_to =
            (!caller.is_privileged()).then(|| self.settings.image_import_dirs.clone());
        Error::check_xml(
            Kind::Image,
            &[&name, &user.name, &user.gname, &source, &path, &fstype],
            Some(&tmpl),
        )?;
        let id = tx.alloc_id(state, Kind::Image);
        let (state_now, job, source) = if !source.is_empty() {
            (ImageState::Ready, None, source)
        } else if path.is_empty() {
            // Datablock made from SIZE/FSTYPE: an empty file in the repository.
            let to = repo.join(repository_name(id));
            (
                ImageState::Locked,
                Some(CopyJob {
                    image: id,
                    from: PathBuf::new(),
                    to,
                    confined_to,
                }),
                String::new(),
            )
        } else {
            let to = repo.join(repository_name(id));
            (
                ImageState::Locked,
                Some(CopyJob {
                    image: id,
                    from: PathBuf::from(&path),
                    to,
                    confined_to,
                }),
                String::new(),
            )
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
        Ok((id, job))
    }

    pub(super) fn apply_image_copied(
        &self,
        state: &State,
        tx: &mut Tx,
        job: &CopyJob,
        outcome: &std::result::Result<u64, String>,
    ) -> Result<()> {
        let Some(img) = state.images.get(&job.image) else {
            return Ok(());
        };
        let mut img = img.clone();
        match &outcome {
            Ok(bytes) => {
                img.source = job.to.to_string_lossy().to_string();
                if img.size == 0 {
                    img.size = (*bytes / (1024 * 1024)) as i64;
                }
                img.state = ImageState::Ready;
                tracing::info!(image = img.id, bytes, "image ready");
            }
            Err(e) => {
                let message = EventError::CopyImage(DriverReason::Copy {
                    from: job.from.display().to_string(),
                    to: job.to.display().to_string(),
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
        let plain = !source.split('/').any(|c| c == "..");
        if plain
            && !source.is_empty()
            && Path::new(&source).starts_with(self.settings.image_repo_dir())
        {
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
