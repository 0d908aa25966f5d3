//! The site policy applied before a Marketplace image enters the cache (StratusLab's
//! `marketplace/Policy.py`): every active white/black list filters the image's endorsements;
//! when none is left the image is refused. Each decision is reported in the policy's words.

use super::marketplace::ManifestEntry;
use crate::config::PolicySettings;

/// What the policy decided, with one line per entry and active filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDecision {
    /// Entries that passed every active filter, in manifest order.
    pub kept: Vec<ManifestEntry>,
    pub messages: Vec<String>,
}

impl PolicyDecision {
    pub fn accepted(&self) -> bool {
        !self.kept.is_empty()
    }
}

struct Filter<'a> {
    list: &'a [String],
    white: bool,
    what: &'static str,
    value: fn(&ManifestEntry) -> &str,
}

fn listed(list: &[String], value: &str) -> bool {
    list.iter()
        .any(|v| v.trim().eq_ignore_ascii_case(value.trim()))
}

pub fn apply(policy: &PolicySettings, entries: &[ManifestEntry]) -> PolicyDecision {
    let filters = [
        Filter {
            list: &policy.whitelist_endorsers,
            white: true,
            what: "email endorser",
            value: |e| &e.endorser_email,
        },
        Filter {
            list: &policy.blacklist_endorsers,
            white: false,
            what: "email endorser",
            value: |e| &e.endorser_email,
        },
        Filter {
            list: &policy.whitelist_checksums,
            white: true,
            what: "SHA-1 checksum image",
            value: |e| &e.sha1,
        },
        Filter {
            list: &policy.blacklist_checksums,
            white: false,
            what: "SHA-1 checksum image",
            value: |e| &e.sha1,
        },
        Filter {
            list: &policy.whitelist_images,
            white: true,
            what: "image identifier",
            value: |e| &e.identifier,
        },
        Filter {
            list: &policy.blacklist_images,
            white: false,
            what: "image identifier",
            value: |e| &e.identifier,
        },
    ];
    let mut kept: Vec<ManifestEntry> = entries.to_vec();
    let mut messages = Vec::new();
    for f in filters.iter().filter(|f| !f.list.is_empty()) {
        kept.retain(|e| {
            let v = (f.value)(e);
            let on_list = listed(f.list, v);
            let keep = on_list == f.white;
            let verdict = match (f.white, keep) {
                (true, true) => "is whitelisted, keeping entry",
                (true, false) => "is not whitelisted, rejecting entry",
                (false, true) => "is not blacklisted, keeping entry",
                (false, false) => "is blacklisted, rejecting entry",
            };
            messages.push(format!("{} {v} {verdict}", f.what));
            keep
        });
    }
    if kept.is_empty() {
        messages.push("Image isn't valid according to site policy".into());
    }
    PolicyDecision { kept, messages }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(email: &str, sha1: &str, id: &str) -> ManifestEntry {
        ManifestEntry {
            endorser_email: email.into(),
            sha1: sha1.into(),
            identifier: id.into(),
            ..ManifestEntry::default()
        }
    }

    #[test]
    fn no_lists_accept_everything() {
        let d = apply(&PolicySettings::default(), &[entry("a@b", "s", "i")]);
        assert!(d.accepted());
        assert!(d.messages.is_empty());
    }

    #[test]
    fn whitelist_and_blacklist() {
        let p = PolicySettings {
            whitelist_endorsers: vec!["images@stratuslab.eu".into()],
            blacklist_checksums: vec!["bad".into()],
            ..PolicySettings::default()
        };
        let d = apply(
            &p,
            &[
                entry("images@stratuslab.eu", "good", "X"),
                entry("evil@example.org", "good", "X"),
                entry("images@stratuslab.eu", "bad", "X"),
            ],
        );
        assert_eq!(d.kept.len(), 1);
        assert_eq!(d.kept[0].sha1, "good");
        assert_eq!(
            d.messages,
            vec![
                "email endorser images@stratuslab.eu is whitelisted, keeping entry",
                "email endorser evil@example.org is not whitelisted, rejecting entry",
                "email endorser images@stratuslab.eu is whitelisted, keeping entry",
                "SHA-1 checksum image good is not blacklisted, keeping entry",
                "SHA-1 checksum image bad is blacklisted, rejecting entry",
            ]
        );
    }

    #[test]
    fn refusal_says_so() {
        let p = PolicySettings {
            blacklist_images: vec!["X".into()],
            ..PolicySettings::default()
        };
        let d = apply(&p, &[entry("a", "s", "X")]);
        assert!(!d.accepted());
        assert_eq!(
            d.messages.last().map(String::as_str),
            Some("Image isn't valid according to site policy")
        );
    }
}
