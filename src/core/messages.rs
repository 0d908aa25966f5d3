//! Every text stratusd answers in oned's name, as typed values. The core refuses requests only
//! with these (and with the fixed variants of [`super::Error`]); the API edge puts the
//! `[<Method>] ` prefix in front. Each text is oned 3.2's, from the catalogue of its messages
//! (`fixtures/oned-3.2-messages.md`) or a recording of the real server; the few stratusd-only
//! ones are listed with their reason in `docs/compatibility.md`. `tests/message_catalogue.rs`
//! reads the `#[error]` texts of this file, of `error.rs` and of the two model enums re-exported
//! here ([`UserValidation`], [`AclReason`]) and checks each against both.

use crate::model::vm::FailedStep;
use std::fmt;

pub use crate::model::acl::AclReason;
pub use crate::model::user::UserValidation;

/// Why an allocation was refused: the text after `Error allocating a new <object>. `.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AllocDetail {
    #[error("NAME cannot be empty.")]
    NameEmpty,
    #[error("NAME is too long; max length is 128 chars.")]
    NameTooLong,
    /// `kind` is the authorization name of the pool (`TEMPLATE`, `NET`, `IMAGE`, …).
    #[error("NAME is already taken by {kind} {id}.")]
    NameTaken { kind: &'static str, id: i32 },
    /// The object's body would not be well-formed XML (`object` as 3.2's class names it).
    #[error("Error transforming the {0} to XML.")]
    XmlTransform(&'static str),

    // Virtual machines (VirtualMachine::insert).
    #[error("VM Template includes a restricted attribute {0}.")]
    RestrictedVmAttribute(String),
    #[error("Could not get virtual network for VM.")]
    NoVirtualNetwork,
    #[error("Could not get disk image for VM.")]
    NoDiskImage,
    #[error("VM can not use more than one OS image.")]
    MoreThanOneOsImage,
    #[error("VM can not use more than one CDROM image.")]
    MoreThanOneCdrom,
    #[error("VM can not use more than 10 DATABLOCK images.")]
    TooManyDatablocks,
    #[error("Only one CONTEXT attribute can be defined.")]
    OneContext,
    #[error("Wrong format for CONTEXT attribute.")]
    ContextFormat,
    #[error("Only one REQUIREMENTS attribute can be defined.")]
    OneRequirements,
    #[error("Wrong format for REQUIREMENTS attribute.")]
    RequirementsFormat,

    // Virtual networks (VirtualNetwork::insert, RangedLeases).
    #[error("No TYPE in template for Virtual Network.")]
    NoNetworkType,
    /// The type as given, upper-cased.
    #[error("Wrong type \"{0}\" in template for Virtual Network.")]
    WrongNetworkType(String),
    #[error("No BRIDGE in template for Virtual Network.")]
    NoBridge,
    /// `IP_START` or `IP_END`, and its value.
    #[error("{key} {value} is not a valid IP.")]
    InvalidRangeEnd { key: &'static str, value: String },
    #[error("No NETWORK_ADDRESS in template for Virtual Network.")]
    NoNetworkAddress,
    #[error("A CIDR prefix of {0} bits is not valid.")]
    InvalidCidrPrefix(String),
    #[error("NETWORK_MASK {0} is not a valid network mask.")]
    InvalidNetworkMask(String),
    #[error("NETWORK_ADDRESS {0} is not a valid IP.")]
    InvalidNetworkAddress(String),
    #[error("NETWORK_ADDRESS {address} is not a base address for the network mask {mask}.")]
    NotBaseAddress { address: String, mask: String },
    #[error("{key} {value} is not part of the network {address}/{bits}.")]
    OutsideNetwork {
        key: &'static str,
        value: String,
        address: String,
        bits: u32,
    },
    #[error("IP_START {start} cannot be greater than the IP_END {end}.")]
    RangeReversed { start: String, end: String },
    /// stratusd-only: a NETWORK_SIZE that is neither C, B, A nor a positive number.
    #[error("Wrong NETWORK_SIZE in template for Virtual Network.")]
    WrongNetworkSize,

    // Images (Image::insert, ImagePool::allocate).
    #[error("Template includes a restricted attribute SOURCE.")]
    RestrictedImageSource,
    #[error("Incorrect TYPE in template.")]
    IncorrectImageType,
    #[error("A DATABLOCK type IMAGE has to declare a PATH, or both SIZE and FSTYPE.")]
    DatablockNeedsPath,
    #[error("No PATH in template.")]
    NoPath,
    #[error("Wrong number in SIZE.")]
    WrongSize,
    #[error("Template malformed, PATH and SOURCE are mutually exclusive.")]
    PathAndSource,
    /// stratusd-only: an ordinary user's PATH outside the site's import directories.
    #[error("PATH {0} is not in an image import directory of this site.")]
    PathNotImportable(String),

    // Hosts (HostPool::allocate).
    #[error("IM_MAD_NAME cannot be empty.")]
    ImMadEmpty,
    #[error("VMM_MAD_NAME cannot be empty.")]
    VmmMadEmpty,
    #[error("VNM_MAD_NAME cannot be empty.")]
    VnmMadEmpty,
    #[error("TM_MAD_NAME cannot be empty.")]
    TmMadEmpty,

    // Users (User::name_is_valid, User::pass_is_valid).
    #[error("{0}.")]
    User(UserValidation),
}

/// A refused request, worded as 3.2 words it: the whole text after `[<Method>] `.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    // Pool listings and parameters (code 4096).
    #[error("Incorrect filter_flag, state")]
    IncorrectStateFilter,
    #[error("Incorrect filter_flag")]
    IncorrectFilter,
    #[error("Wrong group ID")]
    WrongGroupId,

    // Templates of *.update.
    #[error("Can not update template. Parse error: {0}")]
    UpdateParse(String),
    #[error("Can not update template. Parse error")]
    UpdateParseNoDetail,

    // Deletions.
    #[error("Can not delete user. oneadmin can not be deleted.")]
    DeleteOneadmin,
    #[error("Can not delete group. System Groups (ID < 100) cannot be deleted.")]
    DeleteSystemGroup,
    #[error("Can not delete group. Group {0} is not empty.")]
    DeleteNonEmptyGroup(i32),
    #[error("Can not delete host. Can not remove a host with running VMs")]
    DeleteHostWithVms,
    #[error("Can not delete image")]
    DeleteUsedImage,

    // Users.
    #[error("{0}")]
    Password(UserValidation),

    // Hosts (one.host.update of the attributes that choose a driver endpoint, src/trust.rs).
    /// stratusd-only: a LIBVIRT_URI outside the site's allow-list.
    #[error("Can not update template. LIBVIRT_URI {uri} is not allowed on this site: {why}.")]
    LibvirtUriNotAllowed { uri: String, why: String },
    /// stratusd-only: a DOMAIN_TYPE that is not one of the allowed ones.
    #[error("Can not update template. DOMAIN_TYPE {domain_type} is not one of {allowed}.")]
    DomainTypeNotAllowed {
        domain_type: String,
        allowed: String,
    },

    // Images.
    /// `persistent` or `non-persistent`.
    #[error("Could not make image {0}: Image cannot be in 'used' state.")]
    PersistentUsed(&'static str),
    #[error("Could not make image persistent: Image cannot be public and persistent.")]
    PersistentPublic,
    #[error("Could not enable image")]
    EnableImage,
    #[error("Could not disable image")]
    DisableImage,
    /// The type as given, upper-cased.
    #[error("Unknown type {0}")]
    UnknownImageType(String),

    // chmod.
    #[error("Management of 'other' permissions is disabled in oned.conf")]
    OtherPermissionsDisabled,
    #[error("Error updating permissions. Image cannot be public and persistent.")]
    ChmodPublicPersistent,
    #[error("Error updating permissions. New permission values must be -1, 0 or 1")]
    ChmodRange,

    // VM actions and savedisk.
    #[error("Internal error. Action result not defined")]
    ActionResultUndefined,
    #[error("Can not save_as disk. VM cannot be in DONE or FAILED state.")]
    SaveAsFinished,
    #[error("Can not save_as disk. The DISK {disk} does not exist for VM {vm}.")]
    SaveAsNoDisk { disk: i32, vm: i32 },
    #[error("Can not save_as disk. The DISK {0} is already going to be saved.")]
    SaveAsAlready(i32),
    #[error("Can not save_as disk. Source image for DISK {0} is persistent.")]
    SaveAsPersistent(i32),

    // ACL rules (the rule in its `#<uid> VM+NET/* USE` form).
    #[error("Rule {0} already exists")]
    AclRuleExists(String),
    #[error("Rule {rule} is malformed: {}", join(.reasons))]
    AclRuleMalformed {
        rule: String,
        reasons: Vec<AclReason>,
    },
    #[error("Rule {0} does not exist")]
    AclRuleMissing(i32),

    // Lease operations (RequestManagerVirtualNetwork, FixedLeases, RangedLeases, Leases).
    #[error("Error modifying network leases. Parse error. {0}")]
    LeaseParse(String),
    #[error("Error modifying network leases. Parse error.")]
    LeaseParseNoDetail,
    #[error("Error modifying network leases. Empty lease description.")]
    EmptyLeaseDescription,
    #[error(
        "Error modifying network leases. Adding new leases is only supported for FIXED networks."
    )]
    AddLeasesRanged,
    #[error(
        "Error modifying network leases. Removing leases is only supported for FIXED networks."
    )]
    RemoveLeasesRanged,
    #[error("Error modifying network leases. Error inserting lease, malformed IP = {0}")]
    AddMalformedIp(String),
    #[error("Error modifying network leases. Error inserting lease, IP {0} already exists")]
    AddExistingIp(String),
    #[error("Error modifying network leases. Error inserting lease, malformed MAC = {0}")]
    AddMalformedMac(String),
    #[error("Error modifying network leases. Error deleting lease, malformed IP = {0}")]
    RemoveMalformedIp(String),
    #[error(
        "Error modifying network leases. Error deleting lease, IP {ip} is not part of NET {net}"
    )]
    RemoveUnknownIp { ip: String, net: i32 },
    #[error("Error modifying network leases. Error deleting lease, IP {0} is currently in use")]
    RemoveUsedIp(String),
    #[error("Error modifying network leases. Lease is in use.")]
    LeaseInUse,
    #[error("Error modifying network leases. Lease is not part of the NET.")]
    LeaseNotInNetwork,
    #[error("Error modifying network leases. Wrong Lease format.")]
    WrongLeaseFormat,
    #[error("Error modifying network leases. Lease is not on hold.")]
    LeaseNotOnHold,
}

/// One reason of an authorization refusal: 3.2 joins them with `; ` after `User [<uid>] : `.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Denial {
    /// A permission on an object type as a whole (CREATE, or MANAGE ACL).
    #[error("Not authorized to perform {op} {kind}")]
    NotAuthorized {
        op: &'static str,
        kind: &'static str,
    },
    #[error("Not authorized to perform {op} {kind} [{id}]")]
    NotAuthorizedOn {
        op: &'static str,
        kind: &'static str,
        id: i32,
    },
    /// StratusLab's quota driver (`--authz quota`): `resource` is CPU, MEMORY or NUM_VMS,
    /// the figures as it printed them (see [`Denial::quota`]).
    #[error("{resource} quota exceeded (Quota: {limit}, Used: {used}, Requested: {requested})")]
    Quota {
        resource: &'static str,
        limit: String,
        used: String,
        requested: String,
    },
}

impl Denial {
    /// A quota refusal; CPU figures are printed with one decimal, the others as integers.
    pub fn quota(resource: &'static str, limit: f64, used: f64, requested: f64) -> Denial {
        let show = |v: f64| {
            if resource == "CPU" {
                format!("{v:.1}")
            } else {
                format!("{}", v as i64)
            }
        };
        Denial::Quota {
            resource,
            limit: show(limit),
            used: show(used),
            requested: show(requested),
        }
    }
}

/// What a failed driver step or monitoring leaves in an object's `TEMPLATE/ERROR/MESSAGE`
/// (3.2 answers nothing then: only the object's document shows it). `reason` is the driver's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventError {
    /// A failed transfer or hypervisor operation (`FailedStep::of` the VM's LCM state), with
    /// the driver's reason.
    #[error("{}: {}", .0.title(), .1)]
    Step(FailedStep, String),
    #[error("Error rebooting VM, assume it's still running: {0}")]
    Reboot(String),
    #[error("Error monitoring VM: {0}")]
    MonitorVm(String),
    /// The image repository's CP (one.image.allocate with PATH).
    #[error("Error copying image in the repository: {0}")]
    CopyImage(DriverReason),
    /// The image repository's MV when a VM ends (persistent images, savedisk).
    #[error("Error saving image to the repository: {0}")]
    SaveImage(DriverReason),
}

/// The reasons stratusd's own image repository gives where 3.2's `fs` driver scripts did.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriverReason {
    #[error("Could not move {from} to {to}")]
    Move { from: String, to: String },
    /// stratusd-only wording: 3.2's cp script reported its command's output.
    #[error("Error copying {from} to {to}")]
    Copy { from: String, to: String },
}

/// Reasons joined as 3.2 joins them.
pub fn join<T: fmt::Display>(reasons: &[T]) -> String {
    reasons
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}
