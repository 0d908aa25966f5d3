//! The style sheet, the script and the icon, compiled into the binary. Their URLs carry a
//! hash of their content, so browsers may keep them as long as they like.

use hyper::StatusCode;

pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    hash: u64,
}

/// FNV-1a, at compile time: a version tag, not a security measure.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

impl Asset {
    const fn new(name: &'static str, content_type: &'static str, body: &'static [u8]) -> Asset {
        Asset {
            name,
            content_type,
            body,
            hash: fnv1a(body),
        }
    }

    /// The URL pages link to.
    pub fn path(&self) -> String {
        format!("/dashboard/static/{}?v={:016x}", self.name, self.hash)
    }
}

pub static CSS: Asset = Asset::new(
    "dashboard.css",
    "text/css; charset=utf-8",
    include_bytes!("assets/dashboard.css"),
);
pub static JS: Asset = Asset::new(
    "dashboard.js",
    "text/javascript; charset=utf-8",
    include_bytes!("assets/dashboard.js"),
);
pub static ICON: Asset = Asset::new(
    "icon.svg",
    "image/svg+xml",
    include_bytes!("assets/icon.svg"),
);

const ALL: [&Asset; 3] = [&CSS, &JS, &ICON];

/// The asset named `name`, with the status and caching to answer with.
pub fn find(name: &str) -> Option<&'static Asset> {
    ALL.into_iter().find(|a| a.name == name)
}

/// `Cache-Control` for an asset request: long when the version in the URL is the current one.
pub fn cache_control(asset: &Asset, query: Option<&str>) -> (&'static str, StatusCode) {
    let current = format!("v={:016x}", asset.hash);
    if query == Some(current.as_str()) {
        ("public, max-age=31536000, immutable", StatusCode::OK)
    } else {
        ("no-cache", StatusCode::OK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_found_and_versioned() {
        let css = find("dashboard.css").unwrap();
        assert!(css.path().starts_with("/dashboard/static/dashboard.css?v="));
        assert!(find("../../etc/passwd").is_none());
        let query = css.path().split_once('?').map(|(_, q)| q.to_string());
        assert_eq!(
            cache_control(css, query.as_deref()).0,
            "public, max-age=31536000, immutable"
        );
        assert_eq!(cache_control(css, Some("v=0")).0, "no-cache");
    }
}
