//! The cloud-init context disk (hooks §6.4): an OpenStack config-drive v1 layout on a
//! 1,024,000-byte VFAT image labelled `_CLOUD_INIT` — `meta.js` with the user data and
//! `root/.ssh/authorized_keys` — as StratusLab's `TMMakeVFAT` built it with `mkfs.vfat -n`.

use super::context::context_sh_value;
use super::{Result, StorageError};
use base64::Engine;
use std::io::{Cursor, Read, Seek, SeekFrom, Write};

pub const VFAT_LABEL: [u8; 11] = *b"_CLOUD_INIT";
pub const VFAT_SIZE: usize = 1_024_000;
/// The client's limit on the gzipped user data.
pub const USER_DATA_LIMIT: usize = 16384;

/// Python 2's `json.dumps` string form (ASCII only, `\uXXXX` escapes).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `meta.js`: `{"dsmode": "local", "user-data": "<text>"}` or `{"dsmode": "local"}`.
pub fn meta_js(user_data: Option<&str>) -> String {
    match user_data {
        Some(text) => format!(
            "{{\"dsmode\": \"local\", \"user-data\": {}}}",
            json_string(text)
        ),
        None => "{\"dsmode\": \"local\"}".into(),
    }
}

/// What the cloud-init disk will hold, from context.sh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudInitData {
    pub user_data: Option<String>,
    pub authorized_keys: Option<Vec<u8>>,
}

fn b64(value: &str, what: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|e| StorageError::BadValue(format!("{what} is not valid base64: {e}")))
}

/// Decodes `CLOUD_INIT_USER_DATA` (base64 of gzip) and `CLOUD_INIT_AUTHORIZED_KEYS` (base64).
pub fn from_context_sh(text: &str) -> Result<CloudInitData> {
    let user_data = match context_sh_value(text, "CLOUD_INIT_USER_DATA") {
        None => None,
        Some(v) => {
            let gz = b64(&v, "CLOUD_INIT_USER_DATA")?;
            if gz.len() > USER_DATA_LIMIT {
                return Err(StorageError::UserDataTooLarge(gz.len()));
            }
            let mut plain = Vec::new();
            flate2::read::MultiGzDecoder::new(gz.as_slice())
                .take(16 * 1024 * 1024)
                .read_to_end(&mut plain)
                .map_err(|e| {
                    StorageError::BadValue(format!("CLOUD_INIT_USER_DATA is not gzip data: {e}"))
                })?;
            Some(String::from_utf8_lossy(&plain).to_string())
        }
    };
    let authorized_keys = context_sh_value(text, "CLOUD_INIT_AUTHORIZED_KEYS")
        .map(|v| b64(&v, "CLOUD_INIT_AUTHORIZED_KEYS"))
        .transpose()?;
    Ok(CloudInitData {
        user_data,
        authorized_keys,
    })
}

fn fat_err(e: std::io::Error) -> StorageError {
    StorageError::Io {
        what: "cannot build the cloud-init disk".into(),
        source: e,
    }
}

/// mkfs.vfat also writes the label as the root directory's volume entry, which is where
/// blkid (and so /dev/disk/by-label) looks first; fatfs only puts it in the boot sector.
fn write_label_entry(img: &mut Cursor<Vec<u8>>) -> std::io::Result<()> {
    let b = img.get_ref();
    let u16_at = |at: usize| u16::from_le_bytes([b[at], b[at + 1]]) as u64;
    let bytes_per_sector = u16_at(11);
    let reserved = u16_at(14);
    let fats = u64::from(b[16]);
    let sectors_per_fat = u16_at(22);
    let root = (reserved + fats * sectors_per_fat) * bytes_per_sector;
    let mut entry = [0u8; 32];
    entry[..11].copy_from_slice(&VFAT_LABEL);
    entry[11] = 0x08;
    img.seek(SeekFrom::Start(root))?;
    img.write_all(&entry)
}

/// The disk image itself.
pub fn build(data: &CloudInitData) -> Result<Vec<u8>> {
    let mut img = Cursor::new(vec![0u8; VFAT_SIZE]);
    fatfs::format_volume(
        &mut img,
        fatfs::FormatVolumeOptions::new()
            .fat_type(fatfs::FatType::Fat12)
            .volume_label(VFAT_LABEL),
    )
    .map_err(fat_err)?;
    write_label_entry(&mut img).map_err(fat_err)?;
    img.seek(SeekFrom::Start(0)).map_err(fat_err)?;
    {
        let fs = fatfs::FileSystem::new(&mut img, fatfs::FsOptions::new()).map_err(fat_err)?;
        let root = fs.root_dir();
        let mut meta = root.create_file("meta.js").map_err(fat_err)?;
        meta.truncate().map_err(fat_err)?;
        meta.write_all(meta_js(data.user_data.as_deref()).as_bytes())
            .map_err(fat_err)?;
        drop(meta);
        if let Some(keys) = &data.authorized_keys {
            root.create_dir("root").map_err(fat_err)?;
            root.create_dir("root/.ssh").map_err(fat_err)?;
            let mut f = root
                .create_file("root/.ssh/authorized_keys")
                .map_err(fat_err)?;
            f.truncate().map_err(fat_err)?;
            f.write_all(keys).map_err(fat_err)?;
        }
        drop(root);
        fs.unmount().map_err(fat_err)?;
    }
    Ok(img.into_inner())
}

/// Reads a file back from a cloud-init disk (tests and diagnostics).
pub fn read_file(image: &[u8], path: &str) -> Result<Vec<u8>> {
    let mut cur = Cursor::new(image.to_vec());
    let fs = fatfs::FileSystem::new(&mut cur, fatfs::FsOptions::new()).map_err(fat_err)?;
    let mut f = fs.root_dir().open_file(path).map_err(fat_err)?;
    let mut out = Vec::new();
    f.read_to_end(&mut out).map_err(fat_err)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_js_is_python2_json() {
        assert_eq!(meta_js(None), "{\"dsmode\": \"local\"}");
        assert_eq!(
            meta_js(Some("#!/bin/sh\necho \"hé\"\n")),
            "{\"dsmode\": \"local\", \"user-data\": \"#!/bin/sh\\necho \\\"h\\u00e9\\\"\\n\"}"
        );
        assert_eq!(json_string("\u{1F600}"), "\"\\ud83d\\ude00\"");
    }

    #[test]
    fn recorded_user_data_decodes() {
        // The CLOUD_INIT_USER_DATA of stratuslab-client.md §6.3 (c).
        let text = "CLOUD_INIT_USER_DATA=\"H4sIAKvnBGsC/41PPWvDMBTc9StUdVZkJ6ZObdQlzdAhW+kuyy/RA0syes/g/PuWDoFAhtx4x30dcmJIrL+vM3QyLhPj7AqbiCuMvRzykkZXrlbZe2yrXd00+33bNG37tq3e29paJU5fp6P+gUKYUyfrTSWE1s9YxeFuCMPKZtUUYJrIF5y5lz64QsBWLaQdecRHdbeY4hKdoehj8nnEdOlkOyDf9E+kORPyv9ExOx/iH9/LM06QXASrypI2FJQQry9mwGQoCPAhy4DyQxqOswn47D2txS/u32OEagEAAA==\"\nCLOUD_INIT_AUTHORIZED_KEYS=\"c3NoLXJzYSBrZXkK\"\n";
        let data = from_context_sh(text).unwrap();
        let user = data.user_data.unwrap();
        assert!(user.contains("text/x-shellscript"), "{user}");
        assert!(user.contains("run.sh"));
        assert_eq!(data.authorized_keys.unwrap(), b"ssh-rsa key\n");
    }

    #[test]
    fn disk_holds_the_files() {
        let data = CloudInitData {
            user_data: Some("hello".into()),
            authorized_keys: Some(b"ssh-rsa k\n".to_vec()),
        };
        let img = build(&data).unwrap();
        assert_eq!(img.len(), VFAT_SIZE);
        assert_eq!(
            read_file(&img, "meta.js").unwrap(),
            meta_js(Some("hello")).as_bytes()
        );
        assert_eq!(
            read_file(&img, "root/.ssh/authorized_keys").unwrap(),
            b"ssh-rsa k\n"
        );
        let fs = fatfs::FileSystem::new(Cursor::new(img), fatfs::FsOptions::new()).unwrap();
        assert_eq!(fs.volume_label(), "_CLOUD_INIT");
    }

    #[test]
    fn oversized_user_data_is_refused() {
        let big = base64::engine::general_purpose::STANDARD.encode(vec![1u8; 20000]);
        let err = from_context_sh(&format!("CLOUD_INIT_USER_DATA=\"{big}\"\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "multipart size (20000) exceeds limit (16384)"
        );
    }
}
