//! StratusLab site set-up (`stratusd site-setup`): creates in a running stratusd, over
//! XML-RPC, what StratusLab's installer and `stratus-register-node` created in oned: the
//! nodes, the networks `public` (FIXED), `local` (FIXED) and `private` (RANGED) owned by
//! oneadmin, one `* NET/#<id> USE` rule per network and the `* VM+IMAGE+TEMPLATE/* USE+CREATE`
//! rule. The calls are the installer's, method for method and parameter for parameter
//! (`installer`), made with the daemon's XML-RPC client (`crate::oneclient`).
//!
//! Idempotent: what already exists (a host of that name, a network of that name owned by
//! oneadmin, an identical ACL rule) is looked up and left alone, so running it twice creates
//! nothing twice. An existing network is not compared with the wanted one: like the
//! installer, which only warned "Already present?", we report it and keep it.

pub mod installer;

use crate::oneclient::{OneClient, Param, RpcError, Scalar};
use installer::{AclRule, FixedLease};
use quick_xml::events::Event;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// oned's id of oneadmin, the owner of the site's networks.
const ONEADMIN_UID: &str = "0";

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {why}")]
    LeaseLine {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("{0} holds no lease")]
    NoLeases(PathBuf),
    #[error("the oneadmin auth file {0} must hold `oneadmin:PASSWORD` on its first line")]
    AuthFile(PathBuf),
    #[error("private network {0:?}: expected A.B.C.D/NN with NN from 1 to 30")]
    PrivateNetwork(String),
    #[error("host drivers {0:?}: expected IM,VMM,VNM,TM")]
    HostDrivers(String),
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("answer of {method} is not what oned sends: {why}")]
    Answer { method: String, why: String },
}

/// A node to register, with its four driver names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub im: String,
    pub vmm: String,
    pub vnm: String,
    pub tm: String,
}

/// Everything the site set-up creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SitePlan {
    pub nodes: Vec<Node>,
    pub bridge: String,
    pub public: Vec<FixedLease>,
    pub local: Vec<FixedLease>,
    pub private_address: Ipv4Addr,
    pub private_size: u64,
}

/// Reads a leases file: one `IP [MAC]` per line (space or comma between), `#` comments.
pub fn read_leases(path: &Path) -> Result<Vec<FixedLease>, SiteError> {
    let text = std::fs::read_to_string(path).map_err(|source| SiteError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut leases = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: String| SiteError::LeaseLine {
            path: path.to_path_buf(),
            line: index + 1,
            why,
        };
        let mut words = line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|w| !w.is_empty());
        let ip_text = words.next().unwrap_or("");
        let ip: Ipv4Addr = ip_text
            .parse()
            .map_err(|_| bad(format!("{ip_text:?} is not an IPv4 address")))?;
        let mac = words.next().map(str::to_string);
        if let Some(m) = &mac {
            if crate::model::vnet::parse_mac(m).is_none() {
                return Err(bad(format!("{m:?} is not a MAC address")));
            }
        }
        if let Some(extra) = words.next() {
            return Err(bad(format!("unexpected {extra:?} after the MAC")));
        }
        leases.push(FixedLease { ip, mac });
    }
    if leases.is_empty() {
        return Err(SiteError::NoLeases(path.to_path_buf()));
    }
    Ok(leases)
}

/// `A.B.C.D/NN` to the installer's NETWORK_ADDRESS and NETWORK_SIZE (2^(32-NN) addresses).
pub fn parse_private_network(text: &str) -> Result<(Ipv4Addr, u64), SiteError> {
    let bad = || SiteError::PrivateNetwork(text.to_string());
    let (addr, bits) = text.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = addr.trim().parse().map_err(|_| bad())?;
    let bits: u32 = bits.trim().parse().map_err(|_| bad())?;
    if !(1..=30).contains(&bits) {
        return Err(bad());
    }
    Ok((addr, 1u64 << (32 - bits)))
}

pub fn parse_host_drivers(name: &str, drivers: &str) -> Result<Node, SiteError> {
    let parts: Vec<&str> = drivers.split(',').map(str::trim).collect();
    match parts.as_slice() {
        [im, vmm, vnm, tm] if parts.iter().all(|p| !p.is_empty()) => Ok(Node {
            name: name.to_string(),
            im: im.to_string(),
            vmm: vmm.to_string(),
            vnm: vnm.to_string(),
            tm: tm.to_string(),
        }),
        _ => Err(SiteError::HostDrivers(drivers.to_string())),
    }
}

/// The session string: the first line of a `ONE_AUTH`-style file.
pub fn read_session(path: &Path) -> Result<String, SiteError> {
    let text = std::fs::read_to_string(path).map_err(|source| SiteError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let line = text.lines().next().unwrap_or("").trim_end().to_string();
    match line.split_once(':') {
        Some((user, pass))
            if !user.is_empty() && !user.contains(char::is_whitespace) && !pass.is_empty() =>
        {
            Ok(line)
        }
        _ => Err(SiteError::AuthFile(path.to_path_buf())),
    }
}

/// Pool documents: the direct children of every `record` element, by name.
fn records(
    method: &str,
    doc: &str,
    record: &str,
) -> Result<Vec<HashMap<String, String>>, SiteError> {
    let mut reader = quick_xml::Reader::from_str(doc);
    let mut out = Vec::new();
    let mut current: Option<HashMap<String, String>> = None;
    // Depth below the current record: 1 = one of its fields.
    let mut depth = 0usize;
    let mut field = String::new();
    let mut text = String::new();
    let bad = |why: String| SiteError::Answer {
        method: method.to_string(),
        why,
    };
    loop {
        match reader.read_event().map_err(|e| bad(e.to_string()))? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).to_string();
                if current.is_none() {
                    if name == record {
                        current = Some(HashMap::new());
                        depth = 0;
                    }
                    continue;
                }
                depth += 1;
                if depth == 1 {
                    field = name;
                    text.clear();
                }
            }
            Event::Text(t) if depth == 1 => {
                text.push_str(&t.unescape().map_err(|e| bad(e.to_string()))?)
            }
            Event::CData(t) if depth == 1 => text.push_str(&String::from_utf8_lossy(&t)),
            Event::End(_) => match current.as_mut() {
                Some(fields) if depth == 1 => {
                    fields.insert(std::mem::take(&mut field), std::mem::take(&mut text));
                    depth = 0;
                }
                Some(_) if depth == 0 => {
                    out.extend(current.take());
                }
                Some(_) => depth -= 1,
                None => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

fn document(method: &str, value: Scalar) -> Result<String, SiteError> {
    match value {
        Scalar::Str(s) => Ok(s),
        other => Err(SiteError::Answer {
            method: method.to_string(),
            why: format!("expected a document, got {other:?}"),
        }),
    }
}

fn id(method: &str, value: Scalar) -> Result<i32, SiteError> {
    match value {
        Scalar::Int(i) => i32::try_from(i).map_err(|_| SiteError::Answer {
            method: method.to_string(),
            why: format!("id {i} out of range"),
        }),
        other => Err(SiteError::Answer {
            method: method.to_string(),
            why: format!("expected an id, got {other:?}"),
        }),
    }
}

/// What one step did: created (with the new id) or found already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created(i32),
    Present(i32),
}

impl Outcome {
    pub fn id(self) -> i32 {
        match self {
            Outcome::Created(i) | Outcome::Present(i) => i,
        }
    }
}

/// Carries out `plan`, reporting each step through `report` with the label the recorded
/// set-up script printed before the id (`host <name> id`, `vnet <name> id`, `acl net <net>`,
/// `acl user`).
pub fn apply(
    client: &OneClient,
    plan: &SitePlan,
    report: &mut dyn FnMut(&str, Outcome),
) -> Result<(), SiteError> {
    // Look everything up first, then create in the installer's order.
    let hosts = records(
        "one.hostpool.info",
        &document("one.hostpool.info", client.call("one.hostpool.info", &[])?)?,
        "HOST",
    )?;
    let method = "one.vnpool.info";
    let pool = client.call(method, &[Param::Int(-2), Param::Int(-1), Param::Int(-1)])?;
    let vnets = records(method, &document(method, pool)?, "VNET")?;
    let acls = records(
        "one.acl.info",
        &document("one.acl.info", client.call("one.acl.info", &[])?)?,
        "ACL",
    )?;

    let existing_id = |rows: &[HashMap<String, String>],
                       pred: &dyn Fn(&HashMap<String, String>) -> bool| {
        rows.iter()
            .find(|r| pred(r))
            .and_then(|r| r.get("ID"))
            .and_then(|i| i.parse::<i32>().ok())
    };

    for node in &plan.nodes {
        let outcome = match existing_id(&hosts, &|r| r.get("NAME") == Some(&node.name)) {
            Some(i) => Outcome::Present(i),
            None => {
                // stratus-register-node's 7 parameters: 3.2 reads the first 6.
                let m = "one.host.allocate";
                let params = [
                    Param::Str(node.name.clone()),
                    Param::Str(node.im.clone()),
                    Param::Str(node.vmm.clone()),
                    Param::Str(node.vnm.clone()),
                    Param::Str(node.tm.clone()),
                    Param::Bool(true),
                ];
                Outcome::Created(id(m, client.call(m, &params)?)?)
            }
        };
        report(&format!("host {} id", node.name), outcome);
    }

    let networks = [
        (
            "public",
            installer::fixed_network("public", &plan.bridge, &plan.public),
        ),
        (
            "local",
            installer::fixed_network("local", &plan.bridge, &plan.local),
        ),
        (
            "private",
            installer::ranged_network(
                "private",
                &plan.bridge,
                plan.private_size,
                plan.private_address,
            ),
        ),
    ];
    let mut net_ids = Vec::new();
    for (name, template) in networks {
        let owned_by_oneadmin = |r: &HashMap<String, String>| {
            r.get("NAME").map(String::as_str) == Some(name)
                && r.get("UID").map(String::as_str) == Some(ONEADMIN_UID)
        };
        let outcome = match existing_id(&vnets, &owned_by_oneadmin) {
            Some(i) => Outcome::Present(i),
            None => {
                let m = "one.vn.allocate";
                Outcome::Created(id(m, client.call(m, &[Param::Str(template)])?)?)
            }
        };
        report(&format!("vnet {name} id"), outcome);
        net_ids.push(outcome.id());
    }

    let rule_exists = |rule: &AclRule| {
        let hex = |r: &HashMap<String, String>, k: &str| {
            r.get(k)
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        };
        acls.iter().find_map(|r| {
            (hex(r, "USER") == Some(rule.users)
                && hex(r, "RESOURCE") == Some(rule.resources)
                && hex(r, "RIGHTS") == Some(rule.rights))
            .then(|| r.get("ID").and_then(|i| i.parse::<i32>().ok()))
            .flatten()
        })
    };
    let add_rule = |rule: AclRule| -> Result<Outcome, SiteError> {
        Ok(match rule_exists(&rule) {
            Some(i) => Outcome::Present(i),
            None => {
                let m = "one.acl.addrule";
                let [users, resources, rights] = rule.hex_args();
                let params = [Param::Str(users), Param::Str(resources), Param::Str(rights)];
                Outcome::Created(id(m, client.call(m, &params)?)?)
            }
        })
    };
    for net in net_ids {
        let outcome = add_rule(AclRule::use_network(net))?;
        report(&format!("acl net {net}"), outcome);
    }
    let outcome = add_rule(AclRule::users_default())?;
    report("acl user", outcome);
    Ok(())
}

/// `stratusd site-setup`: reads the inputs, applies the plan, prints one line per step.
pub fn run(args: &crate::cli::SiteSetupArgs) -> Result<(), SiteError> {
    let (private_address, private_size) = parse_private_network(&args.private_network)?;
    let nodes = args
        .host
        .iter()
        .map(|h| parse_host_drivers(h, &args.host_drivers))
        .collect::<Result<Vec<_>, _>>()?;
    let plan = SitePlan {
        nodes,
        bridge: args.bridge.clone(),
        public: read_leases(&args.public_leases)?,
        local: read_leases(&args.local_leases)?,
        private_address,
        private_size,
    };
    let client = OneClient::new(
        &args.endpoint,
        read_session(&args.oneadmin_auth)?,
        concat!("stratusd-site-setup/", env!("CARGO_PKG_VERSION")),
    )?;
    apply(&client, &plan, &mut |what, outcome| match outcome {
        Outcome::Created(i) => println!("{what} {i}"),
        Outcome::Present(i) => println!("{what} {i} (already present)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str, text: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("stratusd-site-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn lease_files() {
        let p = scratch(
            "ok",
            "# public\n192.168.1.1 00:16:3e:d9:78:b1\n192.168.1.2,00:16:3e:d9:78:b2 # two\n\n192.168.1.3\n",
        );
        let l = read_leases(&p).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[1].mac.as_deref(), Some("00:16:3e:d9:78:b2"));
        assert_eq!(l[2].mac, None);
        let p = scratch("bad", "192.168.1.1 00:16:3e\n");
        assert!(matches!(
            read_leases(&p),
            Err(SiteError::LeaseLine { line: 1, .. })
        ));
        let p = scratch("empty", "# nothing\n");
        assert!(matches!(read_leases(&p), Err(SiteError::NoLeases(_))));
    }

    #[test]
    fn private_networks() {
        assert_eq!(
            parse_private_network("172.16.0.0/16").unwrap(),
            (Ipv4Addr::new(172, 16, 0, 0), 65536)
        );
        assert!(parse_private_network("172.16.0.0").is_err());
        assert!(parse_private_network("172.16.0.0/31").is_err());
    }

    #[test]
    fn pool_records_take_only_direct_children() {
        let doc = "<VNET_POOL><VNET><ID>2</ID><UID>0</UID><NAME>private</NAME><TEMPLATE><NAME><![CDATA[x]]></NAME></TEMPLATE></VNET><VNET><ID>3</ID><NAME>b&amp;c</NAME></VNET></VNET_POOL>";
        let r = records("m", doc, "VNET").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].get("NAME").map(String::as_str), Some("private"));
        assert_eq!(r[0].get("ID").map(String::as_str), Some("2"));
        assert_eq!(r[1].get("NAME").map(String::as_str), Some("b&c"));
    }
}
