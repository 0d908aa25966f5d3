//! IMAGE objects of the image repository.

use super::xml::{elem, elem_num};
use super::{Oid, Permissions};
use crate::template::Template;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageType {
    Os = 0,
    Cdrom = 1,
    Datablock = 2,
}

impl ImageType {
    pub fn parse(text: &str) -> Option<ImageType> {
        match text.trim().to_ascii_uppercase().as_str() {
            "OS" => Some(ImageType::Os),
            "CDROM" => Some(ImageType::Cdrom),
            "DATABLOCK" => Some(ImageType::Datablock),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageState {
    Init = 0,
    Ready = 1,
    Used = 2,
    Disabled = 3,
    Locked = 4,
    Error = 5,
}

impl ImageType {
    /// The type's name as 3.2 writes it in templates.
    pub fn name(self) -> &'static str {
        match self {
            ImageType::Os => "OS",
            ImageType::Cdrom => "CDROM",
            ImageType::Datablock => "DATABLOCK",
        }
    }
}

impl ImageState {
    /// The state's name as 3.2 writes it (`oneimage list`).
    pub fn name(self) -> &'static str {
        match self {
            ImageState::Init => "INIT",
            ImageState::Ready => "READY",
            ImageState::Used => "USED",
            ImageState::Disabled => "DISABLED",
            ImageState::Locked => "LOCKED",
            ImageState::Error => "ERROR",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    pub id: Oid,
    pub uid: Oid,
    pub gid: Oid,
    pub uname: String,
    pub gname: String,
    pub name: String,
    pub perms: Permissions,
    pub image_type: ImageType,
    pub persistent: bool,
    pub regtime: i64,
    pub source: String,
    pub path: String,
    pub fstype: String,
    /// MiB.
    pub size: i64,
    pub state: ImageState,
    pub running_vms: i64,
    pub template: Template,
}

impl Image {
    pub fn write_xml(&self, out: &mut String) {
        out.push_str("<IMAGE>");
        elem_num(out, "ID", self.id);
        elem_num(out, "UID", self.uid);
        elem_num(out, "GID", self.gid);
        elem(out, "UNAME", &self.uname);
        elem(out, "GNAME", &self.gname);
        elem(out, "NAME", &self.name);
        self.perms.write_xml(out);
        elem_num(out, "TYPE", self.image_type as i32);
        elem_num(out, "PERSISTENT", u8::from(self.persistent));
        elem_num(out, "REGTIME", self.regtime);
        elem(out, "SOURCE", &self.source);
        elem(out, "PATH", &self.path);
        elem(out, "FSTYPE", &self.fstype);
        elem_num(out, "SIZE", self.size);
        elem_num(out, "STATE", self.state as i32);
        elem_num(out, "RUNNING_VMS", self.running_vms);
        self.template.write_xml(out);
        out.push_str("</IMAGE>");
    }
}
