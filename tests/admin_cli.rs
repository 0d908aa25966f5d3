//! The admin command line (`stratusd vm|host|net|user|image|template`) against a real daemon
//! holding VMs in every state (pending, hold, running, stopped, suspended, done, failed): its
//! `--json` parsed and checked against the pool documents, 3.2's table columns and state
//! abbreviations, `--xml` equal to the documents, paged listings equal to whole ones, actions,
//! and OpenNebula's environment variables.

mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

struct Cli {
    endpoint: String,
    auth: std::path::PathBuf,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Out {
        let out = Command::new(env!("CARGO_BIN_EXE_stratusd"))
            .args(args)
            .env("ONE_XMLRPC", &self.endpoint)
            .env("ONE_AUTH", &self.auth)
            .env("HOME", "/nonexistent")
            .output()
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(
            o.code, 0,
            "stratusd {args:?} failed: {}{}",
            o.stdout, o.stderr
        );
        o.stdout
    }

    fn json(&self, args: &[&str]) -> Value {
        let text = self.ok(args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
    }
}

/// `id -> (STATE, LCM_STATE)` of the VMs of a `--json` pool listing.
fn json_states(pool: &Value) -> BTreeMap<i32, (String, String)> {
    pool["VM_POOL"]["VM"]
        .as_array()
        .expect("VM is a list")
        .iter()
        .map(|v| {
            (
                v["ID"].as_str().unwrap().parse().unwrap(),
                (
                    v["STATE"].as_str().unwrap().to_string(),
                    v["LCM_STATE"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

/// The same from `one.vmpool.info` with a state filter.
fn rpc_states(c: &mut Client, state_filter: i32) -> BTreeMap<i32, (String, String)> {
    let pool = ok(&c.call(
        "one.vmpool.info",
        &[s(ADMIN), i(-2), i(-1), i(-1), i(state_filter)],
    ));
    elements(&pool, "VM")
        .into_iter()
        .map(|v| {
            (
                field(v, "ID").unwrap().parse().unwrap(),
                (field(v, "STATE").unwrap(), field(v, "LCM_STATE").unwrap()),
            )
        })
        .collect()
}

#[test]
fn the_admin_command_line_lists_shows_and_acts_on_every_family() {
    // tm_stratuslab is left out so that a VM on `failhost` fails its prolog (FAILED).
    let d = Daemon::start("admin-cli", &["--disable-driver", "tm_stratuslab"]);
    let mut c = d.client();
    let cli = Cli {
        endpoint: format!("http://{}/RPC2", d.addr),
        auth: d.dir.join("one_auth_in"),
    };
    let host = |c: &mut Client, name: &str, tm: &str| -> i32 {
        ok(&c.call(
            "one.host.allocate",
            &[
                s(ADMIN),
                s(name),
                s("im_dummy"),
                s("vmm_dummy"),
                s("dummy"),
                s(tm),
            ],
        ))
        .parse()
        .unwrap()
    };
    let good = host(&mut c, "node-1", "tm_dummy");
    let bad = host(&mut c, "failhost", "tm_stratuslab");
    let on = |h: i32| format!("CPU = 1\nMEMORY = 512\nREQUIREMENTS = \"ID = {h}\"\n");

    let running = allocate_vm(&mut c, &format!("NAME = web\n{}", on(good)));
    let stopped = allocate_vm(&mut c, &format!("NAME = stopped\n{}", on(good)));
    let suspended = allocate_vm(&mut c, &format!("NAME = susp\n{}", on(good)));
    let done = allocate_vm(&mut c, &format!("NAME = gone\n{}", on(good)));
    let failed = allocate_vm(&mut c, &format!("NAME = broken\n{}", on(bad)));
    let pending = allocate_vm(
        &mut c,
        "NAME = nowhere\nCPU = 1\nMEMORY = 64\nREQUIREMENTS = \"ID = 999\"\n",
    );
    let held = allocate_vm(
        &mut c,
        "NAME = held\nCPU = 1\nMEMORY = 64\nREQUIREMENTS = \"ID = 999\"\n",
    );
    vm_act(&mut c, "hold", held);
    for id in [running, stopped, suspended, done] {
        wait_vm_state(&mut c, id, ("3", "3"));
    }
    vm_act(&mut c, "stop", stopped);
    vm_act(&mut c, "suspend", suspended);
    vm_act(&mut c, "finalize", done);
    wait_vm_state(&mut c, stopped, ("4", "0"));
    wait_vm_state(&mut c, suspended, ("5", "0"));
    wait_vm_state(&mut c, done, ("6", "0"));
    wait_vm_state(&mut c, failed, ("7", "0"));
    wait_vm_state(&mut c, pending, ("1", "0"));
    wait_vm_state(&mut c, held, ("2", "0"));

    // --json: every VM but the DONE one, as one.vmpool.info lists them.
    let listed = cli.json(&["vm", "list", "--json"]);
    assert_eq!(json_states(&listed), rpc_states(&mut c, -1));
    assert!(!json_states(&listed).contains_key(&done));
    assert_eq!(json_states(&listed).len(), 6);
    // A paged listing (2 ids a call, across the DONE VM's gap) lists the same.
    let paged = cli.json(&["vm", "list", "--json", "--page-size", "2"]);
    assert_eq!(paged, listed);
    let any = cli.json(&["vm", "list", "--json", "--state", "any", "--page-size", "3"]);
    assert_eq!(json_states(&any), rpc_states(&mut c, -2));
    let only_done = cli.json(&["vm", "list", "--json", "--state", "done"]);
    assert_eq!(
        json_states(&only_done).keys().copied().collect::<Vec<_>>(),
        vec![done]
    );

    // The table: 3.2's columns and state abbreviations.
    let table = cli.ok(&["vm", "list"]);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["ID", "USER", "GROUP", "NAME", "STAT", "CPU", "MEM", "HOSTNAME", "TIME"]
    );
    let stat: BTreeMap<i32, (String, String)> = lines
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w[0].parse().unwrap(), (w[4].to_string(), w[3].to_string()))
        })
        .collect();
    let abbrev = |id: i32| stat[&id].0.as_str();
    assert_eq!(abbrev(running), "runn");
    assert_eq!(abbrev(stopped), "stop");
    assert_eq!(abbrev(suspended), "susp");
    assert_eq!(abbrev(failed), "fail");
    assert_eq!(abbrev(pending), "pend");
    assert_eq!(abbrev(held), "hold");
    assert_eq!(stat[&running].1, "web");
    // HOSTNAME only for ACTIVE and SUSPENDED VMs.
    let row = |id: i32| {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&id.to_string()))
            .unwrap()
            .to_string()
    };
    assert!(row(running).contains("node-1"));
    assert!(row(suspended).contains("node-1"));
    assert!(!row(stopped).contains("node-1"));
    assert!(row(running).contains("oneadmin oneadmin"));
    assert!(cli
        .ok(&["vm", "list", "-n"])
        .lines()
        .nth(1)
        .unwrap()
        .contains(" 0        0 "));
    let done_table = cli.ok(&["vm", "list", "--state", "done"]);
    assert!(
        done_table.lines().nth(1).unwrap().contains(" done "),
        "{done_table}"
    );

    // --xml: the daemon's documents, one VM per line.
    let xml = cli.ok(&["vm", "list", "--xml"]);
    let rpc_pool = ok(&c.call("one.vmpool.info", &[s(ADMIN), i(-2), i(-1), i(-1), i(-1)]));
    assert_eq!(xml.replace('\n', ""), rpc_pool);
    let shown = cli.ok(&["vm", "show", &running.to_string(), "--xml"]);
    assert_eq!(
        shown.trim_end(),
        ok(&c.call("one.vm.info", &[s(ADMIN), i(running)]))
    );

    // show: by id or by name, as text and as JSON.
    let text = cli.ok(&["vm", "show", "web"]);
    assert!(
        text.starts_with(&format!("VIRTUAL MACHINE {running} INFORMATION")),
        "{text}"
    );
    assert!(text.contains("STATE               : ACTIVE"));
    assert!(text.contains("LCM_STATE           : RUNNING"));
    assert!(text.contains("HOSTNAME            : node-1"));
    assert!(text.contains("VIRTUAL MACHINE HISTORY"));
    assert!(text.contains("MEMORY=512"));
    let one = cli.json(&["vm", "show", &failed.to_string(), "--json"]);
    assert_eq!(one["VM"]["ID"], failed.to_string());
    assert_eq!(one["VM"]["STATE"], "7");
    assert_eq!(
        one["VM"]["HISTORY_RECORDS"]["HISTORY"]["HOSTNAME"],
        "failhost"
    );
    assert_eq!(one["VM"]["TEMPLATE"]["MEMORY"], "512");

    // Actions: release and hold by name and by range, delete (finalize); failures keep the
    // others going and exit 255 with oned's message.
    cli.ok(&["vm", "release", "held"]);
    assert_eq!(vm_state(&mut c, held).0, "1");
    let v = cli.ok(&["vm", "hold", &format!("{pending}..{held}"), "-v"]);
    assert!(v.contains(&format!("VM {pending}: hold")), "{v}");
    assert_eq!(vm_state(&mut c, pending).0, "2");
    let o = cli.run(&["vm", "suspend", &format!("{pending},{running}")]);
    assert_eq!(o.code, 255);
    assert!(
        o.stderr
            .contains("[VirtualMachineAction] Wrong state to perform action"),
        "{}",
        o.stderr
    );
    wait_vm_state(&mut c, running, ("5", "0"));
    cli.ok(&["vm", "resume", &running.to_string()]);
    wait_vm_state(&mut c, running, ("3", "3"));
    cli.ok(&["vm", "delete", &pending.to_string()]);
    assert_eq!(vm_state(&mut c, pending).0, "6");
    let o = cli.run(&["vm", "show", "4242"]);
    assert_eq!(o.code, 255);
    assert!(
        o.stderr.contains("Error getting virtual machine [4242]"),
        "{}",
        o.stderr
    );
    let o = cli.run(&["vm", "show", "no-such-vm"]);
    assert_eq!(
        (o.code, o.stderr.trim()),
        (255, "VM named no-such-vm not found.")
    );

    // Hosts: 3.2's table, disable and enable.
    let hosts = cli.ok(&["host", "list"]);
    assert_eq!(
        hosts
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["ID", "NAME", "RVM", "TCPU", "FCPU", "ACPU", "TMEM", "FMEM", "AMEM", "STAT"]
    );
    cli.ok(&["host", "disable", "failhost"]);
    let stat_of = |t: &str, name: &str| {
        t.lines()
            .find(|l| l.contains(name))
            .and_then(|l| l.split_whitespace().last())
            .unwrap()
            .to_string()
    };
    assert_eq!(stat_of(&cli.ok(&["host", "list"]), "failhost"), "off");
    let h = cli.json(&["host", "show", &bad.to_string(), "--json"]);
    assert_eq!(h["HOST"]["STATE"], "4");
    cli.ok(&["host", "enable", &bad.to_string()]);
    let h = cli.json(&["host", "list", "--json"]);
    let listed_hosts = h["HOST_POOL"]["HOST"].as_array().unwrap();
    assert_eq!(listed_hosts.len(), 2);
    assert_ne!(listed_hosts[1]["STATE"], "4");
    assert!(cli.ok(&["host", "show", "node-1"]).contains("HOST SHARES"));

    // Networks, users, images, templates.
    let net = ok(&c.call(
        "one.vn.allocate",
        &[
            s(ADMIN),
            s("NAME = pub\nTYPE = FIXED\nBRIDGE = br0\nLEASES = [ IP = 10.7.0.1 ]\n"),
        ],
    ));
    let nets = cli.json(&["net", "list", "--json"]);
    assert_eq!(nets["VNET_POOL"]["VNET"][0]["NAME"], "pub");
    let shown = cli.ok(&["net", "show", "pub"]);
    assert!(
        shown.contains(&format!("VIRTUAL NETWORK {net} INFORMATION")),
        "{shown}"
    );
    assert!(shown.contains("FREE LEASES"), "{shown}");
    assert!(cli
        .ok(&["net", "list"])
        .lines()
        .nth(1)
        .unwrap()
        .contains(" F "));
    let users = cli.json(&["user", "list", "--json"]);
    assert_eq!(users["USER_POOL"]["USER"][0]["NAME"], "oneadmin");
    assert!(cli
        .ok(&["user", "show", "oneadmin"])
        .contains("AUTH_DRIVER    : core"));
    ok(&c.call(
        "one.template.allocate",
        &[s(ADMIN), s("NAME = small\nCPU = 1\nMEMORY = 128\n")],
    ));
    let t = cli.json(&["template", "show", "small", "--json"]);
    assert_eq!(t["VMTEMPLATE"]["TEMPLATE"]["MEMORY"], "128");
    assert!(cli.ok(&["template", "list"]).contains("small"));
    std::fs::create_dir_all("/srv/cloud/images").unwrap();
    if !Path::new("/srv/cloud/images/ttylinux.img").exists() {
        std::fs::write("/srv/cloud/images/ttylinux.img", vec![0u8; 65536]).unwrap();
    }
    ok(&c.call(
        "one.image.allocate",
        &[
            s(ADMIN),
            s("NAME = ttylinux\nPATH = /srv/cloud/images/ttylinux.img\n"),
        ],
    ));
    let images = cli.json(&["image", "list", "--json"]);
    assert_eq!(images["IMAGE_POOL"]["IMAGE"][0]["NAME"], "ttylinux");
    let table = cli.ok(&["image", "list"]);
    // 3.2 cut headers to their column too: PERSISTENT is 3 wide.
    assert_eq!(
        table
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["ID", "USER", "GROUP", "NAME", "SIZE", "TYPE", "REGTIME", "PER", "STAT", "RVMS"]
    );
    assert!(cli
        .ok(&["image", "show", "ttylinux"])
        .contains("IMAGE 0 INFORMATION"));
}

#[test]
fn the_environment_decides_where_and_as_whom() {
    let d = Daemon::start("admin-cli-env", &[]);
    // A wrong password: oned's authentication message.
    let bad = d.dir.join("bad_auth");
    std::fs::write(&bad, "oneadmin:wrong\n").unwrap();
    let cli = Cli {
        endpoint: format!("http://{}/RPC2", d.addr),
        auth: bad,
    };
    let o = cli.run(&["user", "list"]);
    assert_eq!(o.code, 255);
    assert!(
        o.stderr.contains("User couldn't be authenticated"),
        "{}",
        o.stderr
    );
    // No credentials file at all.
    let cli = Cli {
        endpoint: format!("http://{}/RPC2", d.addr),
        auth: d.dir.join("missing"),
    };
    let o = cli.run(&["vm", "list"]);
    assert_eq!(o.code, 255);
    assert!(o.stderr.contains("ONE_AUTH"), "{}", o.stderr);
    // Nobody listening.
    let cli = Cli {
        endpoint: format!("http://127.0.0.1:{}/RPC2", free_port()),
        auth: d.dir.join("one_auth_in"),
    };
    let o = cli.run(&["host", "list"]);
    assert_eq!(o.code, 255);
    assert!(o.stderr.contains("cannot reach"), "{}", o.stderr);
    // Another user sees only what oned lets it see.
    let alice = d.dir.join("alice_auth");
    std::fs::write(&alice, "alice:secret\n").unwrap();
    let cli = Cli {
        endpoint: format!("http://{}/RPC2", d.addr),
        auth: alice,
    };
    let mine = cli.json(&["vm", "list", "mine", "--json"]);
    assert_eq!(mine["VM_POOL"]["VM"].as_array().map(Vec::len), Some(0));
    let o = cli.run(&["host", "disable", "0"]);
    assert_eq!(o.code, 255);
}
