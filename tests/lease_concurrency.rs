//! Leases under concurrency, against a real daemon on loopback: 64 clients, each on its own
//! keep-alive connection, allocate 8 VMs each at once on a RANGED network of exactly 254
//! leases. Exactly 254 succeed with distinct IPs and MACs, the rest fail with oned's message,
//! the DHCP host file matches the leases, and finalizing gives every lease back. Then the same
//! with `kill -9` of the daemon in the middle and a restart on the same data directory: no
//! lease is lost or duplicated.

mod common;
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const THREADS: usize = 64;
const PER_THREAD: usize = 8;
const LEASES: usize = 254;
const NO_LEASE: &str = "[VirtualMachineAllocate] Error allocating a new virtual machine. Could not get virtual network for VM.";
const CODE_INTERNAL: i32 = 8192;
const DONE: &str = "6";

/// Addresses in this template are only data: nothing is ever sent to them.
const NETWORK: &str = "NAME = \"pool\"\nTYPE = RANGED\nBRIDGE = br0\nNETWORK_ADDRESS = 172.16.0.0\nNETWORK_SIZE = 254\n";
const VM: &str = "NAME = conc\nCPU = 0.1\nMEMORY = 64\nNIC = [ NETWORK = \"pool\" ]\n";

/// What one allocation attempt came to.
#[derive(Debug, Clone, PartialEq)]
enum Attempt {
    Allocated(i32),
    Refused(String, i32),
    /// The connection broke (the daemon was killed): the call may or may not have committed.
    NoAnswer,
}

fn start(dir: std::path::PathBuf) -> Daemon {
    let file = dir.join("dhcp-hosts");
    Daemon::start_in(dir, &["--dhcp-hosts-file", file.to_str().unwrap()])
}

fn create_network(c: &mut Client) -> i32 {
    let id = rpc_result(&c.call("one.vn.allocate", &[s(ADMIN), s(NETWORK)])).expect("network");
    let id: i32 = id.parse().unwrap();
    let doc = vn_info(c, id);
    assert_eq!(
        field(&doc, "IP_START").as_deref(),
        Some("172.16.0.1"),
        "{doc}"
    );
    assert_eq!(field(&doc, "IP_END").as_deref(), Some("172.16.0.254"));
    id
}

/// 64 threads × 8 allocations, all released at once. `stop_after` ends each thread at its
/// first broken connection.
fn allocate_concurrently(addr: std::net::SocketAddr, allocated: &Arc<AtomicUsize>) -> Vec<Attempt> {
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let allocated = Arc::clone(allocated);
            std::thread::spawn(move || {
                let mut out = Vec::with_capacity(PER_THREAD);
                let mut client = Client::connect(addr);
                barrier.wait();
                for _ in 0..PER_THREAD {
                    match client.try_call("one.vm.allocate", &[s(ADMIN), s(VM)]) {
                        Ok(body) => match rpc_result(&body) {
                            Ok(id) => {
                                allocated.fetch_add(1, Ordering::SeqCst);
                                out.push(Attempt::Allocated(id.parse().unwrap()));
                            }
                            Err((m, code)) => out.push(Attempt::Refused(m, code)),
                        },
                        Err(_) => {
                            out.push(Attempt::NoAnswer);
                            break;
                        }
                    }
                }
                out
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("client thread"))
        .collect()
}

fn cdata(text: &str) -> String {
    text.trim_start_matches("<![CDATA[")
        .trim_end_matches("]]>")
        .to_string()
}

/// (IP, MAC) of the NIC of every VM that is not DONE, by VM id.
fn live_vm_nics(c: &mut Client) -> BTreeMap<i32, (String, String)> {
    let pool = rpc_result(&c.call("one.vmpool.info", &[s(ADMIN), i(-2), i(-1), i(-1), i(-1)]))
        .expect("vmpool");
    let mut out = BTreeMap::new();
    for vm in elements(&pool, "VM") {
        assert_ne!(field(vm, "STATE").as_deref(), Some(DONE));
        let id: i32 = field(vm, "ID").unwrap().parse().unwrap();
        let nic = field(vm, "NIC").unwrap_or_else(|| panic!("VM {id} has no NIC: {vm}"));
        let ip = cdata(&field(&nic, "IP").unwrap_or_default());
        let mac = cdata(&field(&nic, "MAC").unwrap_or_default());
        assert!(out.insert(id, (ip, mac)).is_none());
    }
    out
}

/// Every lease in use belongs to exactly one live VM whose NIC shows it, and every live VM
/// holds the lease its NIC shows: nothing lost, nothing doubled. Returns the leases in use.
fn check_leases_match_vms(c: &mut Client, net: i32) -> Vec<LeaseRow> {
    let used: Vec<LeaseRow> = vn_leases(c, net).into_iter().filter(|l| l.used).collect();
    let vms = live_vm_nics(c);
    let ips: BTreeSet<_> = used.iter().map(|l| &l.ip).collect();
    let macs: BTreeSet<_> = used.iter().map(|l| &l.mac).collect();
    assert_eq!(ips.len(), used.len(), "an IP is leased twice");
    assert_eq!(macs.len(), used.len(), "a MAC is leased twice");
    let mut holders = BTreeSet::new();
    for l in &used {
        let nic = vms
            .get(&l.vid)
            .unwrap_or_else(|| panic!("lease {l:?} held by no live VM"));
        assert_eq!(nic, &(l.ip.clone(), l.mac.clone()), "VM {} NIC", l.vid);
        assert!(holders.insert(l.vid), "VM {} holds two leases", l.vid);
    }
    assert_eq!(
        holders.len(),
        vms.len(),
        "live VMs without their lease: {:?}",
        vms.keys()
            .filter(|id| !holders.contains(id))
            .collect::<Vec<_>>()
    );
    let doc = vn_info(c, net);
    assert_eq!(
        field(&doc, "TOTAL_LEASES"),
        Some(used.len().to_string()),
        "TOTAL_LEASES"
    );
    used
}

fn check_dhcp_file(c: &mut Client, net: i32, file: &Path, checkpoint: &str) {
    let (expected, found) = await_dnsmasq_file(c, &[net], file);
    assert_eq!(
        found,
        expected,
        "DHCP host file {} at checkpoint {checkpoint}",
        file.display()
    );
}

fn finalize_all(c: &mut Client, ids: impl IntoIterator<Item = i32>) {
    for id in ids {
        let r = rpc_result(&c.call("one.vm.action", &[s(ADMIN), s("finalize"), i(id)]));
        assert!(r.is_ok(), "finalize {id}: {r:?}");
    }
}

fn check_all_free(c: &mut Client, net: i32, file: &Path) {
    let doc = vn_info(c, net);
    assert_eq!(field(&doc, "TOTAL_LEASES").as_deref(), Some("0"), "{doc}");
    assert!(
        vn_leases(c, net).is_empty(),
        "RANGED networks list only leases in use"
    );
    let (expected, found) = await_dnsmasq_file(c, &[net], file);
    assert!(expected.is_empty());
    assert!(found.is_empty(), "{found:?}");
}

fn refused_with_oned_message(attempts: &[Attempt]) -> usize {
    let mut n = 0;
    for a in attempts {
        if let Attempt::Refused(message, code) = a {
            assert_eq!(message, NO_LEASE);
            assert_eq!(*code, CODE_INTERNAL);
            n += 1;
        }
    }
    n
}

fn allocated_ids(attempts: &[Attempt]) -> Vec<i32> {
    attempts
        .iter()
        .filter_map(|a| match a {
            Attempt::Allocated(id) => Some(*id),
            _ => None,
        })
        .collect()
}

#[test]
fn concurrent_allocations_take_each_lease_once_and_give_it_back() {
    let d = start(temp_dir("lease-conc"));
    let file = d.dir.join("dhcp-hosts");
    let mut c = d.client();
    let net = create_network(&mut c);
    check_dhcp_file(&mut c, net, &file, "empty network");

    let started = Instant::now();
    let attempts = allocate_concurrently(d.addr, &Arc::new(AtomicUsize::new(0)));
    let elapsed = started.elapsed();
    eprintln!(
        "{} concurrent allocations ({THREADS} connections x {PER_THREAD}) in {:.2} s",
        attempts.len(),
        elapsed.as_secs_f64()
    );
    assert_eq!(attempts.len(), THREADS * PER_THREAD);
    assert!(!attempts.contains(&Attempt::NoAnswer));
    let ids = allocated_ids(&attempts);
    assert_eq!(ids.len(), LEASES, "exactly one VM per lease");
    assert_eq!(
        refused_with_oned_message(&attempts),
        THREADS * PER_THREAD - LEASES
    );

    let used = check_leases_match_vms(&mut c, net);
    assert_eq!(used.len(), LEASES);
    let vids: BTreeSet<i32> = used.iter().map(|l| l.vid).collect();
    assert_eq!(vids, ids.iter().copied().collect::<BTreeSet<_>>());
    check_dhcp_file(&mut c, net, &file, "network full");

    // Half back, then the rest: the file follows at each step.
    let (first, second) = ids.split_at(ids.len() / 2);
    finalize_all(&mut c, first.iter().copied());
    check_leases_match_vms(&mut c, net);
    check_dhcp_file(&mut c, net, &file, "half finalized");
    finalize_all(&mut c, second.iter().copied());
    check_all_free(&mut c, net, &file);
}

#[test]
fn kill9_during_concurrent_allocations_loses_and_doubles_no_lease() {
    let dir = temp_dir("lease-kill9");
    let mut d = start(dir.clone());
    let file = dir.join("dhcp-hosts");
    let mut c = d.client();
    let net = create_network(&mut c);
    drop(c);

    let allocated = Arc::new(AtomicUsize::new(0));
    let addr = d.addr;
    let counter = Arc::clone(&allocated);
    let clients = std::thread::spawn(move || allocate_concurrently(addr, &counter));
    // Kill once a good part, but not all, of the leases are taken.
    let deadline = Instant::now() + Duration::from_secs(120);
    while allocated.load(Ordering::SeqCst) < LEASES / 3 {
        assert!(Instant::now() < deadline, "allocations too slow");
        std::thread::sleep(Duration::from_millis(1));
    }
    d.kill9();
    let attempts = clients.join().expect("clients");
    let answered = allocated_ids(&attempts);
    let unanswered = attempts.iter().filter(|a| **a == Attempt::NoAnswer).count();
    eprintln!(
        "kill -9 after {} answered allocations ({unanswered} calls cut off)",
        answered.len()
    );
    assert!(
        answered.len() < LEASES,
        "the kill came too late to test anything"
    );

    let d = start(dir);
    let mut c = d.client();
    let used = check_leases_match_vms(&mut c, net);
    let holders: BTreeSet<i32> = used.iter().map(|l| l.vid).collect();
    for id in &answered {
        assert!(
            holders.contains(id),
            "VM {id} was answered but lost its lease"
        );
    }
    check_dhcp_file(&mut c, net, &file, "after restart");

    // The network still hands out exactly its remaining leases.
    let mut more = Vec::new();
    loop {
        match rpc_result(&c.call("one.vm.allocate", &[s(ADMIN), s(VM)])) {
            Ok(id) => more.push(id.parse::<i32>().unwrap()),
            Err((m, code)) => {
                assert_eq!((m.as_str(), code), (NO_LEASE, CODE_INTERNAL));
                break;
            }
        }
        assert!(more.len() <= LEASES);
    }
    assert_eq!(
        used.len() + more.len(),
        LEASES,
        "leases lost across the crash"
    );
    let used = check_leases_match_vms(&mut c, net);
    assert_eq!(used.len(), LEASES);
    check_dhcp_file(&mut c, net, &file, "full after restart");

    finalize_all(&mut c, used.iter().map(|l| l.vid));
    check_all_free(&mut c, net, &file);
}
