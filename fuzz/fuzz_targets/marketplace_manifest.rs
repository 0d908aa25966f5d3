//! The Marketplace manifest reader: any document is read or refused; an entry it reads is
//! checked, and written back as a manifest that reads again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use stratusd::storage::marketplace::{parse_manifest, write_manifest};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(manifest) = parse_manifest(text) else {
        return;
    };
    for entry in &manifest.entries {
        let _ = entry.size();
        let _ = entry.disk_format();
        let _ = entry.validate(&entry.identifier);
        let written = write_manifest(entry);
        parse_manifest(&written).expect("a written manifest reads again");
    }
});
