//! Native StratusLab storage: what `tm_stratuslab`'s scripts did on a StratusLab site, done by
//! the daemon itself (stratuslab-hooks.md §3–§8).
//!
//! * [`marketplace`] fetches and parses manifests; [`policy`] is the site policy;
//! * [`cache`] holds one verified copy of each Marketplace image (download once, streamed,
//!   gunzipped on the fly, size and SHA-1 checked in the same pass, placed atomically);
//! * [`cow`] gives each VM its own qcow2 overlay of a cached image;
//! * [`context`] writes context.sh and the context disk ([`iso9660`] or [`cloud_init`]);
//! * [`volatile`] makes swap and empty file-system disks;
//! * [`save`] turns a VM's disk into a new Marketplace image ([`identifier`] from its SHA-1);
//! * [`pdisk`] attaches persistent disks of the pdisk service;
//! * [`quarantine`] keeps terminated VMs' directories for a while, then purges them;
//! * [`node`] reaches nodes that do not share the VM directory, over [`ssh`];
//! * [`layout`] is where all of this lives on disk; [`source`] classifies DISK sources and
//!   decides which host paths a VM may use.

pub mod cache;
pub mod cloud_init;
pub mod confined;
pub mod context;
pub mod cow;
pub mod identifier;
pub mod iso9660;
pub mod layout;
pub mod marketplace;
pub mod node;
pub mod pdisk;
pub mod policy;
pub mod quarantine;
pub mod save;
pub mod site;
pub mod source;
pub mod ssh;
pub mod volatile;
pub mod volumes;

use crate::model::Oid;
use crate::vmlog::{Level, Module, VmLogDir};

/// A storage operation that failed, worded as StratusLab's programs (and pdisk) reported it.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("Failed to find metadata entry: {url}")]
    ManifestNotFound { url: String },
    #[error("Failed to find metadata entry: {url} ({reason})")]
    MarketplaceUnreachable { url: String, reason: String },
    #[error("Error parsing the metadata corresponding to url {url}, with detail {detail}")]
    ManifestParse { url: String, detail: String },
    #[error("Missing element '{element}' in namespace '{namespace}'")]
    ManifestMissing { element: String, namespace: String },
    #[error("Given image ID [{given}] does not match to downloaded [{found}]")]
    IdMismatch { given: String, found: String },
    #[error("Image location(s) are not set in manifest for the image with ID {id}")]
    NoLocation { id: String },
    #[error("Policy validation failed")]
    PolicyRefused,
    #[error("invalid Marketplace image id: {0}")]
    InvalidImageId(String),
    #[error("size mismatch: {found} (found) != {expected} (expected)")]
    SizeMismatch { found: u64, expected: u64 },
    /// pdisk printed both digests as decimal integers.
    #[error("checksum mismatch: {found} (found) != {expected} (expected)")]
    ChecksumMismatch { found: String, expected: String },
    #[error("invalid SHA-1 checksum: {0}")]
    InvalidSha1(String),
    #[error("error initializing disk contents from {url}")]
    Download { url: String, reason: String },
    #[error("User {user} is not authorized to start image {id}")]
    NotAuthorized { user: String, id: String },
    #[error("VM owner is not set.")]
    OwnerNotSet,
    #[error("User {user} is not authorized to use {path} as a disk: only registered images, Marketplace images and persistent disks can be used")]
    HostPathRefused { user: String, path: String },
    #[error("User {user} is not authorized to put {path} in the context disk")]
    ContextFileRefused { user: String, path: String },
    #[error("persistent disk {0}: this site has no persistent disk service")]
    PdiskUnavailable(String),
    #[error("multipart size ({0}) exceeds limit (16384)")]
    UserDataTooLarge(usize),
    #[error("{0}")]
    BadValue(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Tool(String),
}

impl StorageError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StorageError {
        let what = what.into();
        move |source| StorageError::Io { what, source }
    }
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// Reports what a long storage operation is doing, to the daemon's log (`tracing`) and to the
/// VM's own log (module TM), where users and site scripts look.
#[derive(Clone)]
pub struct Reporter<'a> {
    pub vid: Oid,
    pub log: &'a VmLogDir,
}

impl Reporter<'_> {
    pub fn info(&self, message: &str) {
        tracing::info!(vm = self.vid, "{message}");
        self.log
            .append(self.vid, Module::Transfer, Level::Info, message);
    }

    pub fn warn(&self, message: &str) {
        tracing::warn!(vm = self.vid, "{message}");
        self.log
            .append(self.vid, Module::Transfer, Level::Warning, message);
    }

    pub fn error(&self, message: &str) {
        tracing::warn!(vm = self.vid, "{message}");
        self.log
            .append(self.vid, Module::Transfer, Level::Error, message);
    }
}

/// Human-readable byte counts for progress lines.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub(crate) use crate::timefmt::civil;
pub use crate::timefmt::iso8601;
