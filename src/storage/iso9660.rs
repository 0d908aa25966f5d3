//! A minimal ISO 9660 writer (and reader) for context disks: one flat directory of small files,
//! with Rock Ridge names and modes (what Linux guests read) and a Joliet tree (what other
//! readers prefer), as `mkisofs -V <label> -J -R` produced. ECMA-119 layout: 16 empty sectors,
//! the primary and Joliet volume descriptors, the terminator, path tables, the two root
//! directories, then each file's data from a sector boundary.

use super::civil;

const SECTOR: usize = 2048;
const FIRST_DESCRIPTOR: usize = 16;

/// One file of the image (top level only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoFile {
    pub name: String,
    /// POSIX mode bits (without the file-type bits).
    pub mode: u32,
    pub data: Vec<u8>,
}

fn both16(v: u16) -> [u8; 4] {
    let l = v.to_le_bytes();
    let b = v.to_be_bytes();
    [l[0], l[1], b[0], b[1]]
}

fn both32(v: u32) -> [u8; 8] {
    let l = v.to_le_bytes();
    let b = v.to_be_bytes();
    [l[0], l[1], l[2], l[3], b[0], b[1], b[2], b[3]]
}

/// 7-byte directory-record date.
fn record_date(epoch: i64) -> [u8; 7] {
    let (y, mo, d, h, mi, s) = civil(epoch);
    [
        (y - 1900).clamp(0, 255) as u8,
        mo as u8,
        d as u8,
        h as u8,
        mi as u8,
        s as u8,
        0,
    ]
}

/// 17-byte volume-descriptor date (`YYYYMMDDHHMMSScc` + zone).
fn volume_date(epoch: i64) -> [u8; 17] {
    let (y, mo, d, h, mi, s) = civil(epoch);
    let text = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}00");
    let mut out = [0u8; 17];
    out[..16].copy_from_slice(&text.as_bytes()[..16]);
    out
}

fn padded(text: &str, len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = text.bytes().take(len).collect();
    v.resize(len, b' ');
    v
}

/// UCS-2 big-endian, padded with UCS-2 spaces to `len` bytes.
fn ucs2_padded(text: &str, len: usize) -> Vec<u8> {
    let mut v = ucs2(text);
    v.truncate(len & !1);
    while v.len() + 1 < len {
        v.extend_from_slice(&[0, b' ']);
    }
    v.resize(len, 0);
    v
}

fn ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(|u| u.to_be_bytes()).collect()
}

/// The ISO 9660 (8.3, d-characters) names of the files, unique within the directory.
fn iso_names(files: &[IsoFile]) -> Vec<String> {
    let mut used: Vec<String> = Vec::new();
    for f in files {
        let clean = |s: &str, n: usize| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .take(n)
                .collect()
        };
        let (base, ext) = match f.name.rsplit_once('.') {
            Some((b, e)) if !b.is_empty() => (clean(b, 8), clean(e, 3)),
            _ => (clean(&f.name, 8), String::new()),
        };
        let mut candidate = format!("{base}.{ext}");
        let mut n = 1;
        while used.contains(&candidate) {
            let suffix = n.to_string();
            let keep = 8usize.saturating_sub(suffix.len()).min(base.len());
            candidate = format!("{}{suffix}.{ext}", &base[..keep]);
            n += 1;
        }
        used.push(candidate);
    }
    used
}

/// A directory record; `name` is the raw file identifier.
fn dir_record(name: &[u8], extent: u32, size: u32, dir: bool, date: [u8; 7], su: &[u8]) -> Vec<u8> {
    let mut len = 33 + name.len();
    if len % 2 == 1 {
        len += 1;
    }
    len += su.len();
    if len % 2 == 1 {
        len += 1;
    }
    let mut r = vec![0u8; len];
    r[0] = len as u8;
    r[2..10].copy_from_slice(&both32(extent));
    r[10..18].copy_from_slice(&both32(size));
    r[18..25].copy_from_slice(&date);
    r[25] = if dir { 2 } else { 0 };
    r[28..32].copy_from_slice(&both16(1));
    r[32] = name.len() as u8;
    r[33..33 + name.len()].copy_from_slice(name);
    let su_at = 33 + name.len() + usize::from(name.len().is_multiple_of(2));
    r[su_at..su_at + su.len()].copy_from_slice(su);
    r
}

/// Rock Ridge `PX`: POSIX mode, links, uid, gid.
fn rr_px(mode: u32, links: u32) -> Vec<u8> {
    let mut v = vec![b'P', b'X', 36, 1];
    v.extend_from_slice(&both32(mode));
    v.extend_from_slice(&both32(links));
    v.extend_from_slice(&both32(0));
    v.extend_from_slice(&both32(0));
    v
}

fn rr_nm(name: &str) -> Vec<u8> {
    let mut v = vec![b'N', b'M', (5 + name.len()) as u8, 1, 0];
    v.extend_from_slice(name.as_bytes());
    v
}

/// `SP` (SUSP in use) and `ER` (Rock Ridge) for the root's `.` record.
fn rr_root_markers() -> Vec<u8> {
    let mut v = vec![b'S', b'P', 7, 1, 0xBE, 0xEF, 0];
    let id = b"RRIP_1991A";
    let des =
        b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
    v.extend_from_slice(&[b'E', b'R', (8 + id.len() + des.len()) as u8, 1]);
    v.extend_from_slice(&[id.len() as u8, des.len() as u8, 0, 1]);
    v.extend_from_slice(id);
    v.extend_from_slice(des);
    v
}

/// Lays records out in sectors (a record never crosses a sector boundary).
fn pack_sectors(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    for r in records {
        let used = out.len() % SECTOR;
        if used + r.len() > SECTOR {
            out.resize(out.len() + SECTOR - used, 0);
        }
        out.extend_from_slice(r);
    }
    let rem = out.len() % SECTOR;
    if rem != 0 || out.is_empty() {
        out.resize(out.len() + SECTOR - rem, 0);
    }
    out
}

fn sectors(len: usize) -> usize {
    len.div_ceil(SECTOR).max(1)
}

fn path_table(root_lba: u32, big_endian: bool) -> Vec<u8> {
    let mut v = vec![1u8, 0];
    v.extend_from_slice(&if big_endian {
        root_lba.to_be_bytes()
    } else {
        root_lba.to_le_bytes()
    });
    v.extend_from_slice(&if big_endian {
        1u16.to_be_bytes()
    } else {
        1u16.to_le_bytes()
    });
    v.extend_from_slice(&[0, 0]);
    v
}

struct Tree {
    records: Vec<Vec<u8>>,
}

fn build_tree(
    files: &[IsoFile],
    names: &[Vec<u8>],
    extents: &[u32],
    root_lba: u32,
    root_size: u32,
    date: [u8; 7],
    rock_ridge: bool,
) -> Tree {
    let dir_mode = 0o040_755;
    let (dot_su, dotdot_su) = if rock_ridge {
        let mut dot = rr_root_markers();
        dot.extend(rr_px(dir_mode, 2));
        (dot, rr_px(dir_mode, 2))
    } else {
        (Vec::new(), Vec::new())
    };
    let mut records = vec![
        dir_record(&[0], root_lba, root_size, true, date, &dot_su),
        dir_record(&[1], root_lba, root_size, true, date, &dotdot_su),
    ];
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by(|&a, &b| names[a].cmp(&names[b]));
    for i in order {
        let su = if rock_ridge {
            let mut su = rr_px(0o100_000 | (files[i].mode & 0o7777), 1);
            su.extend(rr_nm(&files[i].name));
            su
        } else {
            Vec::new()
        };
        records.push(dir_record(
            &names[i],
            extents[i],
            files[i].data.len() as u32,
            false,
            date,
            &su,
        ));
    }
    Tree { records }
}

#[allow(clippy::too_many_arguments)]
fn volume_descriptor(
    kind: u8,
    label: &str,
    total: u32,
    path_len: u32,
    l_path: u32,
    m_path: u32,
    root: &[u8],
    epoch: i64,
) -> Vec<u8> {
    let joliet = kind == 2;
    let mut d = vec![0u8; SECTOR];
    d[0] = kind;
    d[1..6].copy_from_slice(b"CD001");
    d[6] = 1;
    let text = |s: &str, n: usize| {
        if joliet {
            ucs2_padded(s, n)
        } else {
            padded(s, n)
        }
    };
    d[8..40].copy_from_slice(&text("LINUX", 32));
    d[40..72].copy_from_slice(&text(label, 32));
    d[80..88].copy_from_slice(&both32(total));
    if joliet {
        // UCS-2 level 3.
        d[88..91].copy_from_slice(b"%/E");
    }
    d[120..124].copy_from_slice(&both16(1));
    d[124..128].copy_from_slice(&both16(1));
    d[128..132].copy_from_slice(&both16(SECTOR as u16));
    d[132..140].copy_from_slice(&both32(path_len));
    d[140..144].copy_from_slice(&l_path.to_le_bytes());
    d[148..152].copy_from_slice(&m_path.to_be_bytes());
    d[156..156 + root.len()].copy_from_slice(root);
    for (at, len) in [
        (190, 128),
        (318, 128),
        (446, 128),
        (702, 37),
        (739, 37),
        (776, 37),
    ] {
        d[at..at + len].copy_from_slice(&text("", len));
    }
    d[574..702].copy_from_slice(&text("STRATUSD", 128));
    let now = volume_date(epoch);
    d[813..830].copy_from_slice(&now);
    d[830..847].copy_from_slice(&now);
    d[847..863].copy_from_slice(b"0000000000000000");
    d[864..880].copy_from_slice(b"0000000000000000");
    d[881] = 1;
    d
}

/// Builds the image. `label` is the volume identifier (at most 32 d-characters).
pub fn build(label: &str, files: &[IsoFile], epoch: i64) -> Vec<u8> {
    let date = record_date(epoch);
    let iso: Vec<Vec<u8>> = iso_names(files)
        .into_iter()
        .map(|n| format!("{n};1").into_bytes())
        .collect();
    let joliet: Vec<Vec<u8>> = files
        .iter()
        .map(|f| {
            ucs2(&format!(
                "{};1",
                f.name.chars().take(64).collect::<String>()
            ))
        })
        .collect();
    // Sizes of the two directories do not depend on extents, so lay them out with zeros first.
    let zeros = vec![0u32; files.len()];
    let iso_dir_len =
        pack_sectors(&build_tree(files, &iso, &zeros, 0, 0, date, true).records).len();
    let jol_dir_len =
        pack_sectors(&build_tree(files, &joliet, &zeros, 0, 0, date, false).records).len();
    let (l_iso, m_iso, l_jol, m_jol) = (19u32, 20u32, 21u32, 22u32);
    let iso_root = 23u32;
    let jol_root = iso_root + sectors(iso_dir_len) as u32;
    let mut next = jol_root + sectors(jol_dir_len) as u32;
    let mut extents = Vec::with_capacity(files.len());
    for f in files {
        extents.push(if f.data.is_empty() { 0 } else { next });
        next += if f.data.is_empty() {
            0
        } else {
            sectors(f.data.len()) as u32
        };
    }
    let total = next;
    let iso_dir = pack_sectors(
        &build_tree(
            files,
            &iso,
            &extents,
            iso_root,
            iso_dir_len as u32,
            date,
            true,
        )
        .records,
    );
    let jol_dir = pack_sectors(
        &build_tree(
            files,
            &joliet,
            &extents,
            jol_root,
            jol_dir_len as u32,
            date,
            false,
        )
        .records,
    );
    let mut img = vec![0u8; total as usize * SECTOR];
    let put = |img: &mut Vec<u8>, lba: u32, bytes: &[u8]| {
        let at = lba as usize * SECTOR;
        img[at..at + bytes.len()].copy_from_slice(bytes);
    };
    let iso_root_rec = dir_record(&[0], iso_root, iso_dir_len as u32, true, date, &[]);
    let jol_root_rec = dir_record(&[0], jol_root, jol_dir_len as u32, true, date, &[]);
    let pvd = volume_descriptor(1, label, total, 10, l_iso, m_iso, &iso_root_rec, epoch);
    let svd = volume_descriptor(2, label, total, 10, l_jol, m_jol, &jol_root_rec, epoch);
    put(&mut img, FIRST_DESCRIPTOR as u32, &pvd);
    put(&mut img, FIRST_DESCRIPTOR as u32 + 1, &svd);
    let mut term = vec![0u8; 7];
    term[0] = 255;
    term[1..6].copy_from_slice(b"CD001");
    term[6] = 1;
    put(&mut img, FIRST_DESCRIPTOR as u32 + 2, &term);
    put(&mut img, l_iso, &path_table(iso_root, false));
    put(&mut img, m_iso, &path_table(iso_root, true));
    put(&mut img, l_jol, &path_table(jol_root, false));
    put(&mut img, m_jol, &path_table(jol_root, true));
    put(&mut img, iso_root, &iso_dir);
    put(&mut img, jol_root, &jol_dir);
    for (f, &lba) in files.iter().zip(&extents) {
        if !f.data.is_empty() {
            put(&mut img, lba, &f.data);
        }
    }
    img
}

/// A file as a reader finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadFile {
    /// The ISO 9660 identifier without its `;1` version.
    pub iso_name: String,
    /// The Rock Ridge name and mode, when present.
    pub rr_name: Option<String>,
    pub rr_mode: Option<u32>,
    pub data: Vec<u8>,
}

/// What a reader sees in an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadImage {
    pub volume_id: String,
    pub files: Vec<ReadFile>,
    /// Names of the Joliet tree, if the image has one.
    pub joliet_names: Vec<String>,
}

impl ReadImage {
    /// A file by its Rock Ridge name (what a Linux guest sees).
    pub fn file(&self, name: &str) -> Option<&ReadFile> {
        self.files
            .iter()
            .find(|f| f.rr_name.as_deref() == Some(name))
    }
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn records(img: &[u8], lba: u32, size: u32) -> Option<Vec<&[u8]>> {
    let start = lba as usize * SECTOR;
    let dir = img.get(start..start + size as usize)?;
    let mut out = Vec::new();
    let mut at = 0;
    while at < dir.len() {
        let len = dir[at] as usize;
        if len == 0 {
            // Rest of this sector is padding.
            at = (at / SECTOR + 1) * SECTOR;
            continue;
        }
        out.push(dir.get(at..at + len)?);
        at += len;
    }
    Some(out)
}

/// Reads an image written by [`build`] (or any single-directory ISO 9660 image).
pub fn read(img: &[u8]) -> Result<ReadImage, String> {
    let pvd = img
        .get(FIRST_DESCRIPTOR * SECTOR..(FIRST_DESCRIPTOR + 1) * SECTOR)
        .ok_or("image too short")?;
    if pvd[0] != 1 || &pvd[1..6] != b"CD001" {
        return Err("no primary volume descriptor".into());
    }
    let volume_id = String::from_utf8_lossy(&pvd[40..72]).trim_end().to_string();
    let root = &pvd[156..190];
    let (lba, size) = (
        le32(root, 2).ok_or("bad root")?,
        le32(root, 10).ok_or("bad root")?,
    );
    let mut files = Vec::new();
    for r in records(img, lba, size).ok_or("bad root directory")? {
        let name_len = r[32] as usize;
        let name = &r[33..33 + name_len];
        if name == [0] || name == [1] || r[25] & 2 != 0 {
            continue;
        }
        let iso_name = String::from_utf8_lossy(name)
            .split(';')
            .next()
            .unwrap_or("")
            .to_string();
        let mut su = &r[33 + name_len + usize::from(name_len.is_multiple_of(2))..];
        let (mut rr_name, mut rr_mode) = (None, None);
        while su.len() >= 4 && su[2] as usize >= 4 && su[2] as usize <= su.len() {
            let len = su[2] as usize;
            match &su[..2] {
                b"NM" => rr_name = Some(String::from_utf8_lossy(&su[5..len]).to_string()),
                b"PX" => rr_mode = le32(su, 4),
                _ => {}
            }
            su = &su[len..];
        }
        let (extent, data_len) = (le32(r, 2).unwrap_or(0), le32(r, 10).unwrap_or(0));
        let at = extent as usize * SECTOR;
        let data = img
            .get(at..at + data_len as usize)
            .ok_or("file outside the image")?
            .to_vec();
        files.push(ReadFile {
            iso_name,
            rr_name,
            rr_mode,
            data,
        });
    }
    let mut joliet_names = Vec::new();
    let svd = img.get((FIRST_DESCRIPTOR + 1) * SECTOR..(FIRST_DESCRIPTOR + 2) * SECTOR);
    if let Some(svd) = svd.filter(|d| d[0] == 2 && &d[88..91] == b"%/E") {
        let root = &svd[156..190];
        if let (Some(lba), Some(size)) = (le32(root, 2), le32(root, 10)) {
            for r in records(img, lba, size).unwrap_or_default() {
                let name_len = r[32] as usize;
                if name_len < 2 {
                    continue;
                }
                let units: Vec<u16> = r[33..33 + name_len]
                    .chunks(2)
                    .map(|c| u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
                    .collect();
                let name = String::from_utf16_lossy(&units);
                joliet_names.push(name.split(';').next().unwrap_or("").to_string());
            }
        }
    }
    Ok(ReadImage {
        volume_id,
        files,
        joliet_names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, data: &[u8]) -> IsoFile {
        IsoFile {
            name: name.into(),
            mode: 0o644,
            data: data.to_vec(),
        }
    }

    #[test]
    fn round_trip() {
        let files = vec![
            f(
                "context.sh",
                b"# Context variables generated by OpenNebula\n",
            ),
            f("init.sh", b"#!/bin/sh\n"),
            f("empty", b""),
            f("big.bin", &vec![7u8; 5000]),
        ];
        let img = build("_STRATUSLAB", &files, 1_339_063_200);
        assert_eq!(img.len() % SECTOR, 0);
        let read = read(&img).unwrap();
        assert_eq!(read.volume_id, "_STRATUSLAB");
        for file in &files {
            let got = read.file(&file.name).unwrap();
            assert_eq!(got.data, file.data, "{}", file.name);
            assert_eq!(got.rr_mode, Some(0o100_644));
        }
        assert_eq!(read.file("context.sh").unwrap().iso_name, "CONTEXT.SH");
        let mut j = read.joliet_names.clone();
        j.sort();
        assert_eq!(j, vec!["big.bin", "context.sh", "empty", "init.sh"]);
    }

    #[test]
    fn many_files_span_directory_sectors() {
        let files: Vec<IsoFile> = (0..60)
            .map(|i| f(&format!("file-number-{i}.txt"), format!("{i}").as_bytes()))
            .collect();
        let read = read(&build("X", &files, 0)).unwrap();
        assert_eq!(read.files.len(), 60);
        for i in 0..60 {
            let got = read.file(&format!("file-number-{i}.txt")).unwrap();
            assert_eq!(got.data, format!("{i}").as_bytes());
        }
        let mut iso: Vec<&str> = read.files.iter().map(|f| f.iso_name.as_str()).collect();
        iso.sort();
        iso.dedup();
        assert_eq!(iso.len(), 60, "ISO names are unique");
    }

    #[test]
    fn dates() {
        assert_eq!(record_date(1_339_063_200), [112, 6, 7, 10, 0, 0, 0]);
        assert_eq!(&volume_date(0)[..16], b"1970010100000000");
    }
}
