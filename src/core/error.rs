//! The typed errors of every core operation. The API edge maps each to oned 3.2's
//! `[<Class>] message` text and error code, once (see `api::error`).

use super::messages::{join, AllocDetail, Denial, Refusal};
use crate::model::Kind;

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum Error {
    /// The session could not be authenticated (256).
    #[error("User couldn't be authenticated, aborting call.")]
    Authentication,
    /// Authorization refused (512): each refused permission or exceeded quota.
    #[error("User [{uid}] : {}.", join(.reasons))]
    Authorization { uid: i32, reasons: Vec<Denial> },
    /// Object lookup failed (1024).
    #[error("Error getting {} [{id}].", kind.object_name())]
    NoExists { kind: Kind, id: i32 },
    /// Wrong state for the action (2048).
    #[error("Wrong state to perform action")]
    WrongState,
    /// An action name 3.2 does not know (2048).
    #[error("Virtual machine action not supported")]
    ActionNotSupported,
    /// Wrong parameter values (4096), e.g. `Incorrect filter_flag`.
    #[error("{0}")]
    BadParameter(Refusal),
    /// Allocation failed (8192): `Error allocating a new <object>.` + optional detail.
    #[error("Error allocating a new {}.", kind.object_name())]
    Allocate {
        kind: Kind,
        detail: Option<AllocDetail>,
    },
    /// A template did not parse at allocation (8192); `message` is the parser's (§3.4).
    #[error("Error allocating a new {}. Parse error: {message}", kind.object_name())]
    AllocateParse { kind: Kind, message: String },
    /// Any other request failure (8192 unless stated).
    #[error("{message}")]
    Request { message: Refusal, code: i32 },
    /// A message 3.2 sends without the `[<Class>]` prefix (e.g. the chmod of OTHER bits).
    #[error("{message}")]
    Unprefixed { message: Refusal, code: i32 },
    /// Persistence failed; nothing was changed (8192).
    #[error("Internal Error")]
    Internal(String),
}

pub const CODE_AUTHENTICATION: i32 = 0x0100;
pub const CODE_AUTHORIZATION: i32 = 0x0200;
pub const CODE_NO_EXISTS: i32 = 0x0400;
pub const CODE_ACTION: i32 = 0x0800;
pub const CODE_XML_RPC_API: i32 = 0x1000;
pub const CODE_INTERNAL: i32 = 0x2000;

impl Error {
    pub fn code(&self) -> i32 {
        match self {
            Error::Authentication => CODE_AUTHENTICATION,
            Error::Authorization { .. } => CODE_AUTHORIZATION,
            Error::NoExists { .. } => CODE_NO_EXISTS,
            Error::WrongState | Error::ActionNotSupported => CODE_ACTION,
            Error::BadParameter(_) => CODE_XML_RPC_API,
            Error::Allocate { .. } | Error::AllocateParse { .. } | Error::Internal(_) => {
                CODE_INTERNAL
            }
            Error::Request { code, .. } | Error::Unprefixed { code, .. } => *code,
        }
    }

    /// The message after the `[<Class>] ` prefix (or the whole message for unprefixed ones).
    pub fn message(&self) -> String {
        match self {
            Error::NoExists { kind, id } if *id == -1 => {
                format!("Error getting {} Pool.", kind.object_name())
            }
            Error::Allocate {
                kind,
                detail: Some(d),
            } => {
                format!("Error allocating a new {}. {d}", kind.object_name())
            }
            other => other.to_string(),
        }
    }

    pub fn has_prefix(&self) -> bool {
        !matches!(self, Error::Unprefixed { .. })
    }

    pub fn alloc(kind: Kind, detail: AllocDetail) -> Error {
        Error::Allocate {
            kind,
            detail: Some(detail),
        }
    }

    /// The allocation failure of an object whose 3.2 body would not be well-formed XML
    /// (`]]>` in a template value; `<`, `&` or `]]>` in a field 3.2 wrote raw, such as NAME).
    /// 3.2 names the object as its class does; hosts say "Group" (a copy-paste in Host.cc).
    pub fn xml_transform(kind: Kind) -> Error {
        let object = match kind {
            Kind::Vm => "VM",
            Kind::Template => "Template",
            Kind::Net => "Virtual Network",
            Kind::Image => "Image",
            Kind::User => "User",
            Kind::Group | Kind::Host | Kind::Acl => "Group",
        };
        Error::alloc(kind, AllocDetail::XmlTransform(object))
    }

    /// 3.2's checks of a new object's name after the empty one (which each pool words or
    /// replaces its own way): at most 128 characters, then not the name of the object `taken`
    /// found (the caller's own of that pool, or any for the pools with global names), whose
    /// kind `label` (`IMAGE`, `NET`, ...) the message names.
    pub fn check_new_name(
        kind: Kind,
        label: &'static str,
        name: &str,
        taken: Option<crate::model::Oid>,
    ) -> Result<()> {
        if name.len() > 128 {
            return Err(Error::alloc(kind, AllocDetail::NameTooLong));
        }
        match taken {
            Some(id) => Err(Error::alloc(
                kind,
                AllocDetail::NameTaken { kind: label, id },
            )),
            None => Ok(()),
        }
    }

    /// [`Error::xml_transform`] unless every raw field and the template would be written as
    /// well-formed XML.
    pub fn check_xml(
        kind: Kind,
        raw_fields: &[&str],
        template: Option<&crate::template::Template>,
    ) -> Result<()> {
        let raw_ok = raw_fields
            .iter()
            .all(|f| crate::template::is_raw_text_safe(f));
        if raw_ok && template.is_none_or(|t| t.is_xml_safe()) {
            Ok(())
        } else {
            Err(Error::xml_transform(kind))
        }
    }

    pub fn request(message: Refusal) -> Error {
        Error::Request {
            message,
            code: CODE_INTERNAL,
        }
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        Error::Internal(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, Error>;
