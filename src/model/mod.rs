//! The domain model: the objects oned 3.2 keeps in its pools, and how each renders as its 3.2 XML
//! document. Rendering is hand-written string building in the fixed element order of 3.2, because
//! clients (and the recorded sessions) depend on that order byte for byte.

pub mod acl;
pub mod group;
pub mod host;
pub mod image;
pub mod monitoring;
pub mod perms;
pub mod quota;
pub mod user;
pub mod vm;
pub mod vmtemplate;
pub mod vnet;
pub mod volume;
pub mod xml;

pub use acl::AclRule;
pub use group::Group;
pub use host::Host;
pub use image::Image;
pub use perms::Permissions;
pub use user::User;
pub use vm::Vm;
pub use vmtemplate::VmTemplate;
pub use vnet::VNet;

/// Object ids are 32-bit signed integers, as in oned (XML-RPC `i4`).
pub type Oid = i32;

/// The pools of oned 3.2. The order is the one used for ACL resource bits.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Kind {
    Vm,
    Host,
    Net,
    Image,
    User,
    Template,
    Group,
    Acl,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Vm,
        Kind::Host,
        Kind::Net,
        Kind::Image,
        Kind::User,
        Kind::Template,
        Kind::Group,
        Kind::Acl,
    ];

    /// Name used in authorization messages (`Not authorized to perform USE VM [0]`).
    pub fn auth_name(self) -> &'static str {
        match self {
            Kind::Vm => "VM",
            Kind::Host => "HOST",
            Kind::Net => "NET",
            Kind::Image => "IMAGE",
            Kind::User => "USER",
            Kind::Template => "TEMPLATE",
            Kind::Group => "GROUP",
            Kind::Acl => "ACL",
        }
    }

    /// Name used in lookup/allocation messages (`Error getting virtual machine [42].`).
    pub fn object_name(self) -> &'static str {
        match self {
            Kind::Vm => "virtual machine",
            Kind::Host => "host",
            Kind::Net => "virtual network",
            Kind::Image => "image",
            Kind::User => "user",
            Kind::Template => "virtual machine template",
            Kind::Group => "group",
            Kind::Acl => "ACL",
        }
    }

    /// ACL resource bit of this object type (3.2 `PoolObjectSQL::ObjectType`).
    pub fn acl_bit(self) -> u64 {
        match self {
            Kind::Vm => 0x10_0000_0000,
            Kind::Host => 0x20_0000_0000,
            Kind::Net => 0x40_0000_0000,
            Kind::Image => 0x80_0000_0000,
            Kind::User => 0x100_0000_0000,
            Kind::Template => 0x200_0000_0000,
            Kind::Group => 0x400_0000_0000,
            Kind::Acl => 0x800_0000_0000,
        }
    }

    /// SQLite table holding this pool.
    pub fn table(self) -> &'static str {
        match self {
            Kind::Vm => "vm_pool",
            Kind::Host => "host_pool",
            Kind::Net => "network_pool",
            Kind::Image => "image_pool",
            Kind::User => "user_pool",
            Kind::Template => "template_pool",
            Kind::Group => "group_pool",
            Kind::Acl => "acl",
        }
    }

    /// First id oned hands out in this pool on an empty database (users 0 and 1, groups 0 and
    /// 1, ACL rules 0 and 1 are created at bootstrap; user groups start at 100).
    pub fn first_free_id(self) -> Oid {
        match self {
            Kind::Group => 100,
            _ => 0,
        }
    }
}

pub use crate::timefmt::ctime;

thread_local! {
    /// The time of the command the core's owner is applying on this thread (nanoseconds since
    /// the epoch), which [`now`] and [`now_nanos`] answer instead of the clock.
    static COMMAND_TIME: std::cell::Cell<Option<i64>> = const { std::cell::Cell::new(None) };
}

/// Epoch seconds, as every time field of the 3.2 documents: while a command is applied, the
/// time stamped on the command (see [`at_command_time`]).
pub fn now() -> i64 {
    now_nanos().div_euclid(1_000_000_000)
}

/// Nanoseconds since the epoch, from the clock or, while a command is applied, its stamp.
pub fn now_nanos() -> i64 {
    if let Some(t) = COMMAND_TIME.with(|c| c.get()) {
        return t;
    }
    wall_clock_nanos()
}

/// Nanoseconds since the epoch, from the system clock.
pub fn wall_clock_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Runs `f` with [`now`] answering `nanos`: applying a command reads only the time it was
/// stamped with, so the same commands give the same state whenever they are applied again.
pub fn at_command_time<T>(nanos: i64, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<i64>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let before = self.0;
            COMMAND_TIME.with(|c| c.set(before));
        }
    }
    let _restore = Restore(COMMAND_TIME.with(|c| c.replace(Some(nanos))));
    f()
}
