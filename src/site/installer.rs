//! What the StratusLab installer (`installator/OpenNebulaFrontend.py`) sent to oned, text for
//! text: the `fixed.net` / `ranged.net` network templates and the ACL rules, as Python 2's
//! `hex()` spelled them (`stratuslab-client.md` §2, §10).

use std::net::Ipv4Addr;

/// One address of a FIXED network; the MAC must be the one the site's DHCP server knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedLease {
    pub ip: Ipv4Addr,
    /// As the site wrote it; `None` lets oned derive it from the IP.
    pub mac: Option<String>,
}

/// `fixed.net` filled in: one `LEASES` line per address.
pub fn fixed_network(name: &str, bridge: &str, leases: &[FixedLease]) -> String {
    let mut out = format!("NAME = \"{name}\"\nTYPE = FIXED\nPUBLIC = YES\n\nBRIDGE = {bridge}\n\n");
    for lease in leases {
        match &lease.mac {
            Some(mac) => out.push_str(&format!("LEASES = [ IP=\"{}\", MAC=\"{mac}\"]\n", lease.ip)),
            None => out.push_str(&format!("LEASES = [ IP=\"{}\"]\n", lease.ip)),
        }
    }
    out
}

/// `ranged.net` filled in.
pub fn ranged_network(name: &str, bridge: &str, size: u64, address: Ipv4Addr) -> String {
    format!(
        "NAME = \"{name}\"\nTYPE = RANGED\nPUBLIC = YES\n\nBRIDGE = {bridge}\n\nNETWORK_SIZE    = {size}\nNETWORK_ADDRESS = {address}\n"
    )
}

/// An ACL rule as the three numbers of `one.acl.addrule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AclRule {
    pub users: u64,
    pub resources: u64,
    pub rights: u64,
}

/// ACL user and resource bits (3.2 `AclRule.h`, `PoolObjectSQL.h`).
const ALL_USERS: u64 = 0x4_0000_0000;
const INDIVIDUAL: u64 = 0x1_0000_0000;
const ALL_RESOURCES: u64 = 0x4_0000_0000;
const NET: u64 = 0x40_0000_0000;
const VM: u64 = 0x10_0000_0000;
const IMAGE: u64 = 0x80_0000_0000;
const TEMPLATE: u64 = 0x200_0000_0000;
const USE: u64 = 0x1;
const CREATE: u64 = 0x8;

impl AclRule {
    /// `* NET/#<id> USE`: everybody may put VMs on the network.
    pub fn use_network(id: i32) -> AclRule {
        AclRule {
            users: ALL_USERS,
            resources: NET | INDIVIDUAL | u64::from(id.unsigned_abs()),
            rights: USE,
        }
    }

    /// `* VM+IMAGE+TEMPLATE/* USE+CREATE`: everybody may create VMs, images and templates and
    /// use everybody's (StratusLab users look at each other's VMs).
    pub fn users_default() -> AclRule {
        AclRule {
            users: ALL_USERS,
            resources: VM | IMAGE | TEMPLATE | ALL_RESOURCES,
            rights: USE | CREATE,
        }
    }

    /// The three `addrule` arguments, spelled as Python's `hex()`: `0x` and lower-case digits.
    pub fn hex_args(&self) -> [String; 3] {
        [
            format!("{:#x}", self.users),
            format!("{:#x}", self.resources),
            format!("{:#x}", self.rights),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_arguments_are_the_installers() {
        assert_eq!(
            AclRule::use_network(0).hex_args(),
            ["0x400000000", "0x4100000000", "0x1"]
        );
        assert_eq!(AclRule::use_network(2).hex_args()[1], "0x4100000002");
        assert_eq!(AclRule::use_network(10).hex_args()[1], "0x410000000a");
        assert_eq!(
            AclRule::users_default().hex_args(),
            ["0x400000000", "0x29400000000", "0x9"]
        );
    }

    #[test]
    fn templates_are_the_installers() {
        let t = fixed_network(
            "local",
            "br0",
            &[FixedLease {
                ip: Ipv4Addr::new(172, 17, 16, 2),
                mac: Some("00:16:3e:d9:79:02".into()),
            }],
        );
        assert_eq!(
            t,
            "NAME = \"local\"\nTYPE = FIXED\nPUBLIC = YES\n\nBRIDGE = br0\n\nLEASES = [ IP=\"172.17.16.2\", MAC=\"00:16:3e:d9:79:02\"]\n"
        );
        assert_eq!(
            ranged_network("private", "br0", 65536, Ipv4Addr::new(172, 16, 0, 0)),
            "NAME = \"private\"\nTYPE = RANGED\nPUBLIC = YES\n\nBRIDGE = br0\n\nNETWORK_SIZE    = 65536\nNETWORK_ADDRESS = 172.16.0.0\n"
        );
    }
}
