//! Accounting of disks with known sizes: a VM with a Marketplace image (its copy-on-write
//! snapshot), a swap disk, a volume of the built-in pdisk service and a registered image,
//! started by `tm_stratuslab` on a simulated host, run for a known time. The sizes its prolog
//! recorded come back from `stratusd.vmpool.disks` (to oneadmin and the owner, never to
//! another user), and `stratusd accounting --csv` gives the disk bytes and GB-hours exactly.

use super::*;
use common::marketplace::{image_bytes, sha1_hex, Marketplace};

const IMAGE: &str = "AC1EEkPiBx87_uLj2-sdybSI-Xa";

fn accounting(site: &Site, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stratusd"))
        .arg("accounting")
        .args(args)
        .env("ONE_XMLRPC", format!("http://{}/RPC2", site.daemon.addr))
        .env("ONE_AUTH", site.dir().join("one_auth_in"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "accounting {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn ok_text(answer: &str) -> String {
    assert!(answer.contains("<boolean>1</boolean>"), "{answer}");
    unescape(&field(answer, "string").unwrap_or_default())
}

#[test]
fn accounting_counts_the_disks_a_prolog_made_at_their_size() {
    let mp = Marketplace::start();
    let data = image_bytes(3 * 1024 * 1024 + 512, 11);
    mp.add_image(IMAGE, &data, true, data.len() as u64, &sha1_hex(&data));
    let mut site = Site::start("volumes-accounting", &[]);
    site.simulated_host("sim-acct");
    let alice = site.alice();
    let volume = alice.create("2", "data");

    // A registered image oneadmin lets everyone use.
    let file = site.dir().join("registered.img");
    let registered = image_bytes(512 * 1024, 5);
    std::fs::write(&file, &registered).unwrap();
    let img = rpc_id(&site.rpc.call(
        "one.image.allocate",
        &[
            s(ADMIN),
            s(&format!("NAME = base\nPATH = {}\n", file.display())),
        ],
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    while field(
        &unescape(&site.rpc.call("one.image.info", &[s(ADMIN), i(img)])),
        "STATE",
    )
    .as_deref()
        != Some("1")
    {
        assert!(Instant::now() < deadline, "image not ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut chmod = vec![s(ADMIN), i(img)];
    chmod.extend([-1, -1, -1, -1, -1, -1, 1, -1, -1].map(i));
    assert!(site
        .rpc
        .call("one.image.chmod", &chmod)
        .contains("<boolean>1</boolean>"));

    let template = format!(
        "NAME = \"measured\"\nMEMORY = 64\nCPU = 0.5\n\
         DISK = [ SOURCE = \"{}\", TARGET = vda, DRIVER = raw ]\n\
         DISK = [ TYPE = swap, SIZE = 16, TARGET = vdb ]\n\
         DISK = [ SOURCE = pdisk:https://pdisk.example.org:8445/{volume}, TARGET = vdc ]\n\
         DISK = [ IMAGE_ID = {img}, TARGET = vdd ]\n\
         CONTEXT = [ TARGET = hde ]\n",
        mp.source(IMAGE)
    );
    let (vm, doc) = site.run_vm("alice", &template);
    assert_eq!(field(&doc, "STATE").as_deref(), Some("3"), "{doc}");
    // The 3.2 document carries no sizes.
    assert!(
        !doc.contains("BYTES") && !doc.contains("disk_sizes"),
        "{doc}"
    );

    let expected = [
        (0, "snapshot", data.len() as u64),
        (1, "swap", 16u64 << 20),
        (2, "pdisk", 2u64 << 30),
        (3, "copy", registered.len() as u64),
    ];
    let total: u64 = expected.iter().map(|e| e.2).sum();
    let addr = site.daemon.addr;
    let disks_doc = |session: &str, flag: i32| {
        let mut c = Client::connect(addr);
        ok_text(&c.call(
            "stratusd.vmpool.disks",
            &[s(session), i(flag), i(-1), i(-1)],
        ))
    };
    let mut want = format!("<VM_DISKS><VM><ID>{vm}</ID>");
    for (id, kind, bytes) in expected {
        want.push_str(&format!(
            "<DISK><DISK_ID>{id}</DISK_ID><KIND>{kind}</KIND><BYTES>{bytes}</BYTES></DISK>"
        ));
    }
    want.push_str("</VM></VM_DISKS>");
    assert_eq!(disks_doc(ADMIN, -2), want, "oneadmin sees every VM");
    assert_eq!(disks_doc("alice:whatever", -3), want, "the owner sees hers");
    // Another user sees nothing of it, however he asks.
    for flag in [-2, -1, -3] {
        assert_eq!(disks_doc("bob:whatever", flag), "<VM_DISKS></VM_DISKS>");
    }
    let alice_uid: i32 = field(&doc, "UID").unwrap().parse().unwrap();
    assert_eq!(
        disks_doc("bob:whatever", alice_uid),
        "<VM_DISKS></VM_DISKS>"
    );
    // Not listed by system.listMethods (3.2's list), and a bad filter gets oned's refusal.
    let mut c = site.daemon.client();
    assert!(!c
        .call("system.listMethods", &[])
        .contains("stratusd.vmpool.disks"));
    let bad = c.call("stratusd.vmpool.disks", &[s(ADMIN), i(-7), i(-1), i(-1)]);
    assert!(bad.contains("<boolean>0</boolean>"), "{bad}");

    // Runs a known time, then ends.
    std::thread::sleep(Duration::from_millis(2100));
    site.vm_action("shutdown", vm);
    let done = site.wait_vm(vm, &["6/0"]);
    let rec = elements(&done, "HISTORY")[0].to_string();
    let n = |tag: &str| -> i64 { field(&rec, tag).unwrap().parse().unwrap() };
    let seconds = n("RETIME") - n("RSTIME");
    assert!(seconds >= 2, "{rec}");
    // Still there after the VM is DONE (the row keeps them).
    assert_eq!(disks_doc(ADMIN, -2), want);

    let csv = accounting(&site, &["--csv", "-u", "alice"]);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines
        .find(|l| l.split(',').nth(2) == Some(&vm.to_string()))
        .unwrap_or_else(|| panic!("{csv}"))
        .split(',')
        .collect();
    let col = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(col("seconds"), seconds.to_string());
    assert_eq!(col("disk_bytes"), total.to_string());
    let gb = total as f64 / (1u64 << 30) as f64;
    assert_eq!(col("disk_gb"), format!("{gb:.3}"));
    assert_eq!(
        col("disk_gb_hours"),
        format!("{:.6}", gb * seconds as f64 / 3600.0)
    );
    assert_eq!(
        col("memory_gb_hours"),
        format!("{:.6}", 64.0 / 1024.0 * seconds as f64 / 3600.0)
    );
    assert_eq!(
        col("cpu_hours"),
        format!("{:.6}", 0.5 * seconds as f64 / 3600.0)
    );
    // The table shows the same disk figure.
    let table = accounting(&site, &["-u", "alice"]);
    assert!(table.contains(&format!("{gb:.2}")), "{table}");
}
