//! The Marketplace image cache: one verified copy per Marketplace id, shared read-only by every
//! VM's overlay (StratusLab's `MACHINE_IMAGE_ORIGIN` volumes, hooks §3.2).
//!
//! Layout under the cache directory:
//! * `images/<id>` — the image, uncompressed, sparse where it is zero;
//! * `images/<id>.json` — what is known about it ([`CachedImage`]);
//! * `manifests/<id>.xml` — the manifest it came with (or was saved with);
//! * `partial/` — downloads in progress; emptied at start-up.
//!
//! An image is downloaded once: concurrent VMs of the same id wait for the first one's download.
//! It streams from the location through gunzip (for `.gz` locations) into a file under
//! `partial/` while its size and SHA-1 are computed; only a verified image is renamed into
//! `images/` (after its description), so a reader sees a complete entry or none.

use super::marketplace::{ManifestEntry, MarketplaceClient};
use super::{identifier, layout, mib, Reporter, Result, StorageError};
use crate::config::PolicySettings;
use serde::{Deserialize, Serialize};
use sha1::Digest;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// pdisk's super-user: images it cached for the site may be started by anyone.
pub const SITE_OWNER: &str = "pdisk";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Visibility {
    Public,
    Private,
}

/// The description of one cached image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedImage {
    pub id: String,
    pub sha1: String,
    pub bytes: u64,
    /// Disk format of the image file (`raw`, `qcow2`).
    pub format: String,
    pub owner: String,
    pub visibility: Visibility,
    /// Where it came from: a location URL, or the VM it was saved from.
    pub origin: String,
    pub cached_at: i64,
}

impl CachedImage {
    /// StratusLab's rule: a PRIVATE image belongs to its owner (and the site).
    pub fn authorize(&self, vm_owner: &str) -> Result<()> {
        if vm_owner.is_empty() {
            return Err(StorageError::OwnerNotSet);
        }
        if self.visibility == Visibility::Private
            && self.owner != vm_owner
            && self.owner != SITE_OWNER
        {
            return Err(StorageError::NotAuthorized {
                user: vm_owner.to_string(),
                id: self.id.clone(),
            });
        }
        Ok(())
    }
}

/// Where to ask for an image that is not cached yet.
pub struct FetchRequest<'a> {
    pub id: &'a str,
    pub endpoint: &'a str,
    pub policy: &'a PolicySettings,
}

pub struct ImageCache {
    dir: PathBuf,
    /// One lock per image id: the first VM downloads, the others wait and then find it cached.
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    downloads: AtomicU64,
}

/// Blocks of zeros this long are left as holes in the cached file.
const HOLE_BLOCK: usize = 64 * 1024;
const COPY_BUFFER: usize = 4 * 1024 * 1024;
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// What streaming an image produced.
#[derive(Debug)]
pub struct Copied {
    pub bytes: u64,
    pub sha1: String,
    /// The stream went on past the expected size (it was not read to its end).
    pub oversized: bool,
}

/// Fills `buf` as far as the stream allows (so block checks see whole blocks).
fn fill(source: &mut (dyn Read + Send), buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Copies `source` into `out` while counting and hashing the bytes; zero blocks become holes.
/// Stops reading once more than `limit` bytes came (a Marketplace cannot fill the disk).
/// Reading (network, gunzip) runs on its own thread, hashing and writing on this one, with
/// buffers handed back and forth so both stages work at once.
pub fn copy_hashing(
    source: &mut (dyn Read + Send),
    out: &mut std::fs::File,
    limit: Option<u64>,
    what: &str,
    report: Option<&Reporter>,
) -> std::io::Result<Copied> {
    use std::sync::mpsc::sync_channel;
    const BUFFERS: usize = 3;
    let (full_tx, full_rx) = sync_channel::<std::io::Result<(Vec<u8>, usize)>>(BUFFERS);
    let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(BUFFERS);
    for _ in 0..BUFFERS {
        let _ = empty_tx.send(vec![0u8; COPY_BUFFER]);
    }
    // `move`: the consumer's channel ends drop when it returns (even early), which stops the
    // reader before the scope waits for it.
    std::thread::scope(move |scope| {
        scope.spawn(move || {
            // Ends when the stream ends, fails, or the consumer stops taking buffers.
            while let Ok(mut buf) = empty_rx.recv() {
                match fill(source, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if full_tx.send(Ok((buf, n))).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = full_tx.send(Err(e));
                        break;
                    }
                }
            }
        });
        let mut hasher = sha1::Sha1::new();
        let mut total: u64 = 0;
        let mut pos_hole = false;
        let started = Instant::now();
        // Copies done for a VM are long work: their progress is published as metrics too.
        let progress = report.map(|r| {
            let kind = if what.starts_with("Downloading") {
                "image_download"
            } else {
                "image_copy"
            };
            let item: String = format!("vm {}: {what}", r.vid).chars().take(200).collect();
            crate::metrics::metrics().long_work(kind, &item, limit.unwrap_or(0))
        });
        let mut last_report = Instant::now();
        // The reader thread drops its sender at the end of the stream.
        for item in full_rx.iter() {
            let (buf, filled) = item?;
            let chunk = &buf[..filled];
            if let Some(limit) = limit {
                if total + filled as u64 > limit {
                    return Ok(Copied {
                        bytes: total + filled as u64,
                        sha1: hex(&hasher.finalize()),
                        oversized: true,
                    });
                }
            }
            hasher.update(chunk);
            for block in chunk.chunks(HOLE_BLOCK) {
                if block.iter().all(|&b| b == 0) {
                    out.seek(SeekFrom::Current(block.len() as i64))?;
                    pos_hole = true;
                } else {
                    out.write_all(block)?;
                    pos_hole = false;
                }
            }
            total += filled as u64;
            if let Some(p) = &progress {
                p.set_done(total);
            }
            let _ = empty_tx.send(buf);
            if let Some(r) = report {
                if last_report.elapsed() >= PROGRESS_EVERY {
                    last_report = Instant::now();
                    let rate = total as f64 / started.elapsed().as_secs_f64().max(1e-3);
                    r.info(&format!(
                        "{what}: {} so far ({}/s)",
                        mib(total),
                        mib(rate as u64)
                    ));
                }
            }
        }
        if pos_hole {
            // A trailing hole needs the length set explicitly.
            out.set_len(total)?;
        }
        Ok(Copied {
            bytes: total,
            sha1: hex(&hasher.finalize()),
            oversized: false,
        })
    })
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Size and SHA-1 of a file, read once (progress reported for long files).
pub fn hash_file(path: &Path, report: &Reporter) -> Result<(u64, String)> {
    let mut f = std::fs::File::open(path)
        .map_err(StorageError::io(format!("cannot read {}", path.display())))?;
    let mut hasher = sha1::Sha1::new();
    let mut buf = vec![0u8; COPY_BUFFER];
    let (mut total, started, mut last) = (0u64, Instant::now(), Instant::now());
    loop {
        let n = f
            .read(&mut buf)
            .map_err(StorageError::io(format!("cannot read {}", path.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
        if last.elapsed() >= PROGRESS_EVERY {
            last = Instant::now();
            let rate = total as f64 / started.elapsed().as_secs_f64().max(1e-3);
            report.info(&format!(
                "Computing the SHA-1: {} so far ({}/s)",
                mib(total),
                mib(rate as u64)
            ));
        }
    }
    Ok((total, hex(&hasher.finalize())))
}

/// Formats a cached image may have (src/trust.rs): `raw`, or `qcow2` without a backing file.
pub fn valid_format(format: &str) -> bool {
    crate::trust::disk_format_allowed(format)
}

impl ImageCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ImageCache {
            dir: dir.into(),
            locks: Mutex::new(HashMap::new()),
            downloads: AtomicU64::new(0),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes downloads a previous run left unfinished.
    pub fn clean_partials(&self) {
        let partial = self.partial_dir();
        if let Ok(entries) = std::fs::read_dir(&partial) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Downloads started by this process (diagnostics and tests).
    pub fn downloads(&self) -> u64 {
        self.downloads.load(Ordering::Relaxed)
    }

    /// How many images the cache holds and the bytes they occupy on disk (their metadata
    /// files and unfinished downloads not counted).
    pub fn usage(&self) -> (usize, u64) {
        use std::os::unix::fs::MetadataExt;
        let Ok(entries) = std::fs::read_dir(self.images_dir()) else {
            return (0, 0);
        };
        let (mut images, mut bytes) = (0usize, 0u64);
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().ends_with(".json") {
                continue;
            }
            if let Ok(meta) = entry.metadata() {
                if meta.is_file() {
                    images += 1;
                    bytes += meta.blocks() * 512;
                }
            }
        }
        (images, bytes)
    }

    /// Sets the image cache gauges (`stratusd_image_cache_*`) from [`Self::usage`].
    pub fn publish_usage(&self) {
        let (images, bytes) = self.usage();
        crate::metrics::metrics().image_cache(images, bytes);
    }

    fn images_dir(&self) -> PathBuf {
        self.dir.join("images")
    }

    fn partial_dir(&self) -> PathBuf {
        self.dir.join("partial")
    }

    pub fn image_path(&self, id: &str) -> PathBuf {
        self.images_dir().join(id)
    }

    fn meta_path(&self, id: &str) -> PathBuf {
        self.images_dir().join(format!("{id}.json"))
    }

    pub fn manifest_path(&self, id: &str) -> PathBuf {
        self.dir.join("manifests").join(format!("{id}.xml"))
    }

    /// A fresh file name under `partial/` for an image being built.
    pub fn partial_path(&self, tag: &str) -> Result<PathBuf> {
        let dir = self.partial_dir();
        std::fs::create_dir_all(&dir)
            .map_err(StorageError::io(format!("cannot create {}", dir.display())))?;
        let n: u64 = rand::random();
        Ok(dir.join(format!("{tag}.{}.{n:016x}", std::process::id())))
    }

    /// The cached image `id`, if a complete entry is there.
    pub fn lookup(&self, id: &str) -> Option<CachedImage> {
        if !identifier::is_safe_image_id(id) {
            return None;
        }
        let meta: CachedImage =
            serde_json::from_slice(&std::fs::read(self.meta_path(id)).ok()?).ok()?;
        let len = std::fs::metadata(self.image_path(id)).ok()?.len();
        (meta.id == id && len == meta.bytes).then_some(meta)
    }

    pub fn manifest(&self, id: &str) -> Option<String> {
        std::fs::read_to_string(self.manifest_path(id)).ok()
    }

    fn lock_for(&self, id: &str) -> Arc<Mutex<()>> {
        let mut locks = match self.locks.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        Arc::clone(locks.entry(id.to_string()).or_default())
    }

    /// The image `id`, from the cache or downloaded into it first.
    pub fn get_or_fetch(
        &self,
        req: &FetchRequest,
        client: &MarketplaceClient,
        report: &Reporter,
    ) -> Result<CachedImage> {
        if !identifier::is_safe_image_id(req.id) {
            return Err(StorageError::InvalidImageId(req.id.to_string()));
        }
        let m = crate::metrics::metrics();
        if let Some(hit) = self.lookup(req.id) {
            m.image_cache_hits.inc();
            report.info(&format!("Image {} found in the cache", req.id));
            return Ok(hit);
        }
        let lock = self.lock_for(req.id);
        let _guard = match lock.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Another VM may have downloaded it while this one waited.
        if let Some(hit) = self.lookup(req.id) {
            m.image_cache_hits.inc();
            report.info(&format!(
                "Image {} found in the cache (downloaded for another VM)",
                req.id
            ));
            return Ok(hit);
        }
        m.image_cache_misses.inc();
        self.fetch(req, client, report)
    }

    fn fetch(
        &self,
        req: &FetchRequest,
        client: &MarketplaceClient,
        report: &Reporter,
    ) -> Result<CachedImage> {
        report.info(&format!(
            "Image {} not in the cache: downloading its manifest from {}",
            req.id, req.endpoint
        ));
        let (manifest, xml) = client.fetch_manifest(req.endpoint, req.id)?;
        let decision = super::policy::apply(req.policy, &manifest.entries);
        for line in &decision.messages {
            report.info(line);
        }
        if !decision.accepted() {
            return Err(StorageError::PolicyRefused);
        }
        let entry: &ManifestEntry = &decision.kept[0];
        entry.validate(req.id)?;
        let expected = entry
            .size()
            .ok_or_else(|| StorageError::BadValue(format!("invalid image size {}", entry.bytes)))?;
        if identifier::sha1_bytes(&entry.sha1).is_none() {
            return Err(StorageError::InvalidSha1(entry.sha1.clone()));
        }
        let format = entry.disk_format();
        if !valid_format(&format) {
            return Err(StorageError::BadValue(format!(
                "unsupported image format {format}"
            )));
        }
        let url = entry.locations[0].clone();
        report.info(&format!(
            "Downloading {url} ({}, SHA-1 {})",
            mib(expected),
            entry.sha1
        ));
        self.downloads.fetch_add(1, Ordering::Relaxed);
        let partial = self.partial_path(req.id)?;
        let m = crate::metrics::metrics();
        m.image_downloads_in_progress.inc();
        let outcome = self.download_verified(client, &url, &partial, expected, &entry.sha1, report);
        m.image_downloads_in_progress.dec();
        // A header naming a backing file would make every VM of the image read that file of
        // the node (and a saved image carry it away).
        let outcome = outcome.and_then(|c| {
            super::cow::check_no_backing_file(&partial, &format)?;
            Ok(c)
        });
        let copied = match outcome {
            Ok(c) => c,
            Err(e) => {
                m.image_download_failures.inc();
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        m.image_download_bytes.inc_by(copied.bytes);
        let meta = CachedImage {
            id: req.id.to_string(),
            sha1: copied.sha1,
            bytes: copied.bytes,
            format,
            owner: SITE_OWNER.into(),
            visibility: Visibility::Private,
            origin: url,
            cached_at: crate::model::now(),
        };
        self.place(&meta, &partial, &xml)?;
        report.info(&format!("Image {} verified and cached", req.id));
        Ok(meta)
    }

    fn download_verified(
        &self,
        client: &MarketplaceClient,
        url: &str,
        partial: &Path,
        expected: u64,
        expected_sha1: &str,
        report: &Reporter,
    ) -> Result<Copied> {
        let fail = |reason: String| {
            report.error(&format!("download of {url} failed: {reason}"));
            StorageError::Download {
                url: url.to_string(),
                reason,
            }
        };
        let started = Instant::now();
        let body = client.open_image(url).map_err(fail)?;
        let mut source: Box<dyn Read + Send> = if url.to_ascii_lowercase().ends_with(".gz") {
            Box::new(flate2::read::MultiGzDecoder::new(
                std::io::BufReader::with_capacity(256 * 1024, body),
            ))
        } else {
            body
        };
        let mut out = std::fs::File::create(partial).map_err(StorageError::io(format!(
            "cannot create {}",
            partial.display()
        )))?;
        let copied = copy_hashing(
            &mut source,
            &mut out,
            Some(expected),
            &format!("Downloading {url}"),
            Some(report),
        )
        .map_err(|e| fail(e.to_string()))?;
        if copied.oversized || copied.bytes != expected {
            return Err(StorageError::SizeMismatch {
                found: copied.bytes,
                expected,
            });
        }
        if copied.sha1 != expected_sha1.to_ascii_lowercase() {
            return Err(StorageError::ChecksumMismatch {
                found: identifier::sha1_decimal(&copied.sha1),
                expected: identifier::sha1_decimal(expected_sha1),
            });
        }
        out.sync_all().map_err(StorageError::io(format!(
            "cannot write {}",
            partial.display()
        )))?;
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        report.info(&format!(
            "Downloaded and verified {} in {secs:.1} s ({}/s)",
            mib(copied.bytes),
            mib((copied.bytes as f64 / secs) as u64)
        ));
        Ok(copied)
    }

    /// Puts a verified image file into the cache under `meta.id`: description and manifest
    /// first, the image last (its presence is what makes the entry visible).
    pub fn place(&self, meta: &CachedImage, file: &Path, manifest_xml: &str) -> Result<()> {
        let json = serde_json::to_vec_pretty(meta)
            .map_err(|e| StorageError::BadValue(format!("cannot encode the cache entry: {e}")))?;
        layout::write_atomically(&self.meta_path(&meta.id), &json)?;
        layout::write_atomically(&self.manifest_path(&meta.id), manifest_xml.as_bytes())?;
        // Read-only: overlays must never change what they are based on.
        layout::set_mode(file, 0o444)?;
        let to = self.image_path(&meta.id);
        std::fs::rename(file, &to)
            .map_err(StorageError::io(format!("cannot place {}", to.display())))?;
        if let Ok(dir) = std::fs::File::open(self.images_dir()) {
            let _ = dir.sync_all();
        }
        self.publish_usage();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_hashing_counts_hashes_and_makes_holes() {
        let dir = std::env::temp_dir().join(format!("cache-copy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("img");
        let mut data = vec![0u8; 3 * HOLE_BLOCK];
        data[HOLE_BLOCK + 5] = 7;
        let mut out = std::fs::File::create(&path).unwrap();
        let c = copy_hashing(&mut data.as_slice(), &mut out, Some(1 << 20), "t", None).unwrap();
        assert_eq!(c.bytes, data.len() as u64);
        assert_eq!(c.sha1, sha1_smol::Sha1::from(&data).digest().to_string());
        assert_eq!(std::fs::read(&path).unwrap(), data);
        let over = copy_hashing(
            &mut data.as_slice(),
            &mut std::fs::File::create(&path).unwrap(),
            Some(10),
            "t",
            None,
        )
        .unwrap();
        assert!(over.oversized);
        // A failing stream fails the copy (and does not hang the reader thread).
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("connection reset"))
            }
        }
        let err = copy_hashing(
            &mut Broken,
            &mut std::fs::File::create(&path).unwrap(),
            None,
            "t",
            None,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "connection reset");
        // Many buffers' worth, cut off by the limit: the reader is stopped mid-stream.
        let big = vec![1u8; 5 * COPY_BUFFER];
        let cut = copy_hashing(
            &mut big.as_slice(),
            &mut std::fs::File::create(&path).unwrap(),
            Some(COPY_BUFFER as u64),
            "t",
            None,
        )
        .unwrap();
        assert!(cut.oversized);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn private_images_belong_to_their_owner() {
        let img = CachedImage {
            id: "X".into(),
            sha1: String::new(),
            bytes: 0,
            format: "raw".into(),
            owner: "alice".into(),
            visibility: Visibility::Private,
            origin: String::new(),
            cached_at: 0,
        };
        img.authorize("alice").unwrap();
        assert_eq!(
            img.authorize("bob").unwrap_err().to_string(),
            "User bob is not authorized to start image X"
        );
        assert!(matches!(img.authorize(""), Err(StorageError::OwnerNotSet)));
        let site = CachedImage {
            owner: SITE_OWNER.into(),
            ..img
        };
        site.authorize("bob").unwrap();
    }
}
