//! Save-as-new-image (hooks §7, StratusLab's `TMSaveCache`): at the end of a shutdown the VM's
//! root disk becomes a new Marketplace image. Its whole content is written out as one raw file,
//! its SHA-1 gives the new Marketplace id, it enters the cache as a PRIVATE image of the VM's
//! owner, its manifest is the origin's with the `CREATE_IMAGE` values, it is uploaded to the
//! target Marketplace, and `MARKETPLACE_AND_IMAGEID <marketplace> <id>` goes to the VM log.

use super::cache::{hash_file, CachedImage, ImageCache, Visibility};
use super::marketplace::{parse_manifest, write_manifest, ManifestEntry, MarketplaceClient};
use super::{cow, identifier, iso8601, mib, Reporter, Result, StorageError};
use std::path::Path;

/// Where saved images go when nothing else is configured.
pub const DEFAULT_MARKETPLACE: &str = "https://marketplace.stratuslab.eu";

/// `CREATE_IMAGE` values, stripped of blanks and of the quotes the client writes for empty ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateImage {
    pub creator_email: String,
    pub creator_name: String,
    pub title: String,
    pub comment: String,
    pub version: String,
    pub marketplace: String,
}

impl CreateImage {
    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.trim().trim_matches('"').trim().to_string())
                .unwrap_or_default()
        };
        CreateImage {
            creator_email: get("CREATOR_EMAIL"),
            creator_name: get("CREATOR_NAME"),
            title: get("NEWIMAGE_TITLE"),
            comment: get("NEWIMAGE_COMMENT"),
            version: get("NEWIMAGE_VERSION"),
            marketplace: get("NEWIMAGE_MARKETPLACE"),
        }
    }
}

/// The origin version with its minor number incremented (`1.0` → `1.1`, `2` → `2.1`).
pub fn next_version(origin: &str) -> String {
    let origin = origin.trim();
    match origin.rsplit_once('.') {
        Some((major, minor)) => match minor.parse::<u64>() {
            Ok(n) => format!("{major}.{}", n + 1),
            Err(_) => format!("{origin}.1"),
        },
        None if origin.is_empty() => "1.0".into(),
        None => format!("{origin}.1"),
    }
}

/// The Marketplace a Marketplace SOURCE came from (the URL without `/metadata/<id>`).
pub fn origin_marketplace(source: &str) -> Option<String> {
    let lower = source.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return None;
    }
    let trimmed = source.trim_end_matches('/');
    let mut parts: Vec<&str> = trimmed.split('/').collect();
    if parts.len() < 5 {
        return None;
    }
    parts.truncate(parts.len() - 2);
    Some(parts.join("/"))
}

/// Which Marketplace receives the new image (§7.2 step 10).
pub fn target_marketplace(create: &CreateImage, local: &str, source: &str) -> String {
    if !create.marketplace.is_empty() {
        return create.marketplace.clone();
    }
    if !local.is_empty() {
        return local.to_string();
    }
    origin_marketplace(source).unwrap_or_else(|| DEFAULT_MARKETPLACE.to_string())
}

/// The new image's manifest entry: the origin's, with §7.4's fields set.
#[allow(clippy::too_many_arguments)]
pub fn new_manifest_entry(
    origin: Option<&ManifestEntry>,
    create: &CreateImage,
    id: &str,
    sha1: &str,
    bytes: u64,
    location: &str,
    now: i64,
    validity_days: i64,
) -> ManifestEntry {
    let mut e = origin.cloned().unwrap_or_default();
    e.identifier = id.to_string();
    e.sha1 = sha1.to_string();
    e.bytes = bytes.to_string();
    e.creator = create.creator_name.clone();
    e.version = if create.version.is_empty() {
        next_version(&e.version)
    } else {
        create.version.clone()
    };
    e.title = create.title.clone();
    e.description = create.comment.clone();
    e.locations = vec![location.to_string()];
    e.created = iso8601(now);
    e.valid = iso8601(now + validity_days.max(0) * 86_400);
    if !create.creator_email.is_empty() {
        e.endorser_email = create.creator_email.clone();
    }
    if !create.creator_name.is_empty() {
        e.endorser_subject = format!("CN={}", create.creator_name);
        e.endorser_issuer = format!("CN={}", create.creator_name);
    }
    // The image is stored uncompressed.
    e.compression = "none".into();
    e.format = "raw".into();
    e
}

/// What a save produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedImage {
    pub id: String,
    pub sha1: String,
    pub bytes: u64,
    pub marketplace: String,
}

/// Everything a save needs to know about the VM and its disk.
pub struct SaveRequest<'a> {
    pub disk: &'a Path,
    /// Format of `disk` (`qcow2` for an overlay).
    pub disk_format: &'a str,
    /// The cached image the disk was a snapshot of.
    pub origin_id: Option<&'a str>,
    /// SOURCE of the disk (the origin's Marketplace URL).
    pub source: &'a str,
    pub owner: &'a str,
    pub vid: crate::model::Oid,
    pub create: CreateImage,
    pub marketplace_local: &'a str,
    pub validity_days: i64,
    pub upload: bool,
}

pub fn save_as_new_image(
    cache: &ImageCache,
    client: &MarketplaceClient,
    req: &SaveRequest,
    report: &Reporter,
) -> Result<SavedImage> {
    if req.owner.is_empty() {
        return Err(StorageError::OwnerNotSet);
    }
    let partial = cache.partial_path("save")?;
    let result = (|| {
        report.info(&format!(
            "Saving {} as a new image: writing out its content",
            req.disk.display()
        ));
        cow::flatten_to_raw(req.disk, req.disk_format, &partial)?;
        let (bytes, sha1) = hash_file(&partial, report)?;
        let id =
            identifier::from_sha1(&sha1).ok_or_else(|| StorageError::InvalidSha1(sha1.clone()))?;
        report.info(&format!("New image {id}: {} with SHA-1 {sha1}", mib(bytes)));
        let origin = req
            .origin_id
            .and_then(|o| cache.manifest(o))
            .and_then(|xml| parse_manifest(&xml).ok())
            .and_then(|m| m.entries.into_iter().next());
        let marketplace = target_marketplace(&req.create, req.marketplace_local, req.source);
        let location = format!("file://{}", cache.image_path(&id).display());
        let now = crate::model::now();
        let entry = new_manifest_entry(
            origin.as_ref(),
            &req.create,
            &id,
            &sha1,
            bytes,
            &location,
            now,
            req.validity_days,
        );
        let xml = write_manifest(&entry);
        if cache.lookup(&id).is_some() {
            // Same content saved before: the cached copy is that image already.
            report.info(&format!("Image {id} is already in the cache"));
            let _ = std::fs::remove_file(&partial);
        } else {
            let meta = CachedImage {
                id: id.clone(),
                sha1: sha1.clone(),
                bytes,
                format: "raw".into(),
                owner: req.owner.to_string(),
                visibility: Visibility::Private,
                origin: format!("saved from VM {}", req.vid),
                cached_at: now,
            };
            cache.place(&meta, &partial, &xml)?;
        }
        if req.upload {
            match client.upload_manifest(&marketplace, &xml) {
                Ok(status) if (200..300).contains(&status) => {
                    report.info(&format!("Manifest of {id} uploaded to {marketplace}"))
                }
                Ok(status) => report.warn(&format!(
                    "Upload of the manifest of {id} to {marketplace} answered HTTP {status}"
                )),
                Err(e) => report.warn(&format!(
                    "Upload of the manifest of {id} to {marketplace} failed: {e}"
                )),
            }
        }
        report.info(&format!("MARKETPLACE_AND_IMAGEID {marketplace} {id}"));
        Ok(SavedImage {
            id,
            sha1,
            bytes,
            marketplace,
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(next_version("1.0"), "1.1");
        assert_eq!(next_version("2.9"), "2.10");
        assert_eq!(next_version("3"), "3.1");
        assert_eq!(next_version(""), "1.0");
    }

    #[test]
    fn create_image_values_are_stripped() {
        let pairs: Vec<(String, String)> = vec![
            ("NEWIMAGE_VERSION".into(), "1.1".into()),
            ("CREATOR_NAME".into(), "Jane Tester".into()),
            ("NEWIMAGE_COMMENT".into(), "\"\"".into()),
            (
                "NEWIMAGE_MARKETPLACE".into(),
                " http://mp.example.org ".into(),
            ),
        ];
        let c = CreateImage::from_pairs(&pairs);
        assert_eq!(c.version, "1.1");
        assert_eq!(c.comment, "");
        assert_eq!(c.marketplace, "http://mp.example.org");
    }

    #[test]
    fn target_selection() {
        let src = "http://127.0.0.1:26340/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb";
        assert_eq!(
            origin_marketplace(src).as_deref(),
            Some("http://127.0.0.1:26340")
        );
        let mut c = CreateImage::default();
        assert_eq!(target_marketplace(&c, "", src), "http://127.0.0.1:26340");
        assert_eq!(target_marketplace(&c, "http://local", src), "http://local");
        assert_eq!(target_marketplace(&c, "", "/x"), DEFAULT_MARKETPLACE);
        c.marketplace = "http://mp".into();
        assert_eq!(target_marketplace(&c, "http://local", src), "http://mp");
    }

    #[test]
    fn new_manifest_fields() {
        let origin = ManifestEntry {
            version: "1.0".into(),
            os: "ttylinux".into(),
            ..ManifestEntry::default()
        };
        let c = CreateImage {
            creator_name: "Jane".into(),
            title: "t".into(),
            comment: "c".into(),
            ..CreateImage::default()
        };
        let e = new_manifest_entry(Some(&origin), &c, "ID", "ab", 10, "loc", 0, 2);
        assert_eq!(e.version, "1.1");
        assert_eq!(e.os, "ttylinux");
        assert_eq!(e.created, "1970-01-01T00:00:00Z");
        assert_eq!(e.valid, "1970-01-03T00:00:00Z");
        assert_eq!(e.locations, vec!["loc"]);
        assert_eq!(e.description, "c");
    }
}
