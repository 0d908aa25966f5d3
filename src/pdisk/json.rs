//! pdisk's JSON answers, in the layout of its FreeMarker templates (`json/*.ftl` of
//! `StratusLab/storage`): the same keys in the same order, every value a string but the error
//! code. Values are escaped properly (pdisk left owners and identifiers unescaped).

use crate::model::volume::{Mount, Volume};

/// A JSON string literal.
fn s(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// `json/disk.ftl`.
pub fn disk(v: &Volume, count: usize) -> String {
    let mut out = String::from("{\n");
    out.push_str(&format!("    \"uuid\": {},\n", s(&v.uuid)));
    out.push_str(&format!("    \"tag\": {},\n", s(&v.tag)));
    out.push_str(&format!("    \"count\": \"{count}\",\n"));
    out.push_str(&format!("    \"owner\": {},\n", s(&v.owner)));
    out.push_str(&format!("    \"identifier\": {},\n", s(&v.identifier)));
    if v.in_quarantine() {
        out.push_str(&format!("    \"quarantine\": {},\n", s(&v.quarantine)));
    }
    out.push_str(&format!("    \"size\": \"{}\",\n", v.size));
    out.push_str(&format!("    \"type\": \"{}\",\n", v.kind.as_str()));
    out.push_str(&format!(
        "    \"visibility\": \"{}\"\n",
        v.visibility.as_str()
    ));
    out.push('}');
    out
}

/// `json/disks.ftl`: the listing (no type or visibility, as pdisk's `DiskView`).
pub fn disks(list: &[(Volume, usize)]) -> String {
    let mut out = String::from("[\n");
    for (i, (v, count)) in list.iter().enumerate() {
        out.push_str("  {\n");
        out.push_str(&format!("    \"uuid\": {},\n", s(&v.uuid)));
        out.push_str(&format!("    \"tag\": {},\n", s(&v.tag)));
        if v.in_quarantine() {
            out.push_str(&format!("    \"quarantine\": {},\n", s(&v.quarantine)));
        }
        out.push_str(&format!("    \"count\": \"{count}\",\n"));
        out.push_str(&format!("    \"owner\": {},\n", s(&v.owner)));
        out.push_str(&format!("    \"identifier\": {},\n", s(&v.identifier)));
        out.push_str(&format!("    \"size\": \"{}\"\n", v.size));
        out.push_str("  }");
        if i + 1 < list.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push(']');
    out
}

/// `json/keyvalue.ftl`.
pub fn key_value(key: &str, value: &str) -> String {
    format!("{{ \n  {} : {}\n}}", s(key), s(value))
}

/// `json/error.ftl`.
pub fn error(message: &str, code: u16) -> String {
    format!(
        "{{ \n  \"message\" : {}, \n  \"code\" : {code} \n}}",
        s(message)
    )
}

/// `json/mounts.ftl`.
pub fn mounts(list: &[Mount]) -> String {
    let mut out = String::from("[\n");
    for (i, m) in list.iter().enumerate() {
        out.push_str("  {\n");
        out.push_str(&format!("    \"vmId\" : \"{}\",\n", m.vm_id));
        out.push_str(&format!("    \"device\" : {}\n", s(&m.device)));
        out.push_str("  }");
        if i + 1 < list.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push(']');
    out
}

/// `json/mount.ftl`: the answer to a detach.
pub fn mount(disk_id: &str, mount_id: &str, vm_id: &str, target: &str) -> String {
    format!(
        "{{\n  \"diskId\" : {}, \n  \"mountId\" : {}, \n  \"vmId\" : {}, \n  \"target\" : {}\n}}",
        s(disk_id),
        s(mount_id),
        s(vm_id),
        s(target)
    )
}

/// `json/action.ftl`: the answer to an attach.
pub fn action(node: &str, vm_id: &str, target: &str, uuid: &str) -> String {
    format!(
        "{{\n  \"node\" : {},\n  \"vm_id\" : {},\n  \"target\" : {},\n  \"uuid\" : [{}]\n}}",
        s(node),
        s(vm_id),
        s(target),
        s(uuid)
    )
}

/// `json/turl.ftl`.
pub fn turl(uuid: &str, turl: &str) -> String {
    format!(
        "{{\n  \"uuid\" : {},\n  \"turl\" : {}\n}}",
        s(uuid),
        s(turl)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::volume::*;

    fn volume(tag: &str) -> Volume {
        Volume {
            uuid: "48ac4190-9a11-4a06-8bef-03fd97080eba".into(),
            owner: "alice".into(),
            tag: tag.into(),
            size: 10,
            kind: VolumeType::DataImageRawReadWrite,
            visibility: Visibility::Private,
            identifier: String::new(),
            quarantine: String::new(),
            quarantined_at: None,
            seed: false,
            base: None,
            created: 0,
            backing: Backing::File {
                path: "/v/x".into(),
                format: "raw".into(),
            },
            state: VolumeState::Ready,
            mounts: Vec::new(),
            cached: false,
        }
    }

    #[test]
    fn a_disk_parses_as_the_client_reads_it() {
        let hostile = "\"}, {\"owner\": \"root\" <x>&'\\\n\u{1}";
        let text = disk(&volume(hostile), 3);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["tag"], hostile);
        assert_eq!(v["count"], "3");
        assert_eq!(v["owner"], "alice");
        assert_eq!(v["size"], "10");
        assert_eq!(v["type"], "DATA_IMAGE_RAW_READ_WRITE");
        assert_eq!(v["visibility"], "PRIVATE");
        assert!(v.get("quarantine").is_none());
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
            .collect();
        assert_eq!(
            keys,
            [
                "uuid",
                "tag",
                "count",
                "owner",
                "identifier",
                "size",
                "type",
                "visibility"
            ]
        );
    }

    #[test]
    fn lists_errors_and_mounts() {
        let mut q = volume("");
        q.quarantine = "2026-01-01 00:00:00.000000".into();
        let list: serde_json::Value =
            serde_json::from_str(&disks(&[(volume("a"), 0), (q, 1)])).unwrap();
        assert_eq!(list.as_array().unwrap().len(), 2);
        assert_eq!(list[1]["quarantine"], "2026-01-01 00:00:00.000000");
        assert!(list[0].get("type").is_none());
        assert_eq!(disks(&[]), "[\n]");
        let e: serde_json::Value =
            serde_json::from_str(&error("disk (x) does not exist", 404)).unwrap();
        assert_eq!(e["code"], 404);
        assert_eq!(e["message"], "disk (x) does not exist");
        let m: serde_json::Value = serde_json::from_str(&mounts(&[Mount {
            vm_id: 5,
            node: "h".into(),
            device: "vdz".into(),
            disk_index: None,
            since: 0,
        }]))
        .unwrap();
        assert_eq!(m[0]["vmId"], "5");
        assert_eq!(m[0]["device"], "vdz");
        let a: serde_json::Value = serde_json::from_str(&action("h", "5", "vdz", "u")).unwrap();
        assert_eq!(a["target"], "vdz");
        assert_eq!(a["uuid"][0], "u");
        let k: serde_json::Value = serde_json::from_str(&key_value("uuid", "u")).unwrap();
        assert_eq!(k["uuid"], "u");
        let d: serde_json::Value = serde_json::from_str(&mount("u", "u_5", "5", "vdz")).unwrap();
        assert_eq!(d["target"], "vdz");
        let t: serde_json::Value = serde_json::from_str(&turl("u", "file:///x")).unwrap();
        assert_eq!(t["turl"], "file:///x");
    }
}
