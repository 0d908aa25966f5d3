//! The browser dashboard end to end: a real stratusd with its HTTPS front door (password file,
//! CA directory with CRL, allowed-DN list, made by `tests/frontdoor/pki.rs`), VMs on simulated
//! hosts, and Debian's headless Chromium driven through chromedriver: sign in with a password
//! and with a client certificate, see the right objects as an ordinary user and as oneadmin,
//! shut a VM down from its page and see the state change arrive live, be refused another
//! user's VM, sign out. Screenshots of the main pages go to
//! `target/dashboard-screenshots/`. A second test checks the HTTP side without a browser:
//! HTTP Basic for scripts, CSRF and origin checks, headers, limits.

#[path = "../common/mod.rs"]
mod common;
// Shared with the front-door suite, which uses all of them.
#[allow(dead_code)]
#[path = "../frontdoor/https.rs"]
mod https;
#[allow(dead_code)]
#[path = "../frontdoor/pki.rs"]
mod pki;
mod webdriver;

use common::*;
use https::{basic, Https};
use pki::{Pki, JOHN_USER};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use webdriver::Browser;

const PLACEHOLDER: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
/// 3.2 wrote a VM's NAME raw into its body, so a name with `<` or `&` is refused at allocation
/// ("Error transforming the VM to XML."); this one tries to break out of an attribute instead.
const HOSTILE_NAME: &str = "x\" onmouseover=\"window.__xss=1\" data-x='>";
const HOSTILE_TEXT: &str = "</pre><script>window.__xss=1</script>";
/// A volume tag (pdisk took any text) that tries to open a tag and break out of an attribute.
const VOLUME_TAG: &str = "data \"'><img src=x onerror=window.__xss=2>";

const PASSWORDS: &str = "alice=s3cret,cloud-access\n\
bob=b0bpass,cloud-access\n\
guest=pw,other-role\n\
oneadmin=password,cloud-access\n";

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| Pki::create(&temp_dir("dash-pki")))
}

fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Site {
    daemon: Daemon,
    https: SocketAddr,
    /// The persistent disk service (`--pdisk-listen`), when the site has it.
    pdisk: Option<SocketAddr>,
    /// VM ids by name.
    vms: Vec<(String, i32)>,
}

impl Site {
    fn start(tag: &str, with_pdisk: bool) -> Site {
        let pki = pki();
        let port = free_port();
        let https: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let dir = temp_dir(tag);
        let passwords = dir.join("login-pswd.properties");
        std::fs::write(&passwords, PASSWORDS).unwrap();
        let args = [
            "--frontdoor-listen".to_string(),
            https.to_string(),
            "--tls-cert".into(),
            pki.server_cert.display().to_string(),
            "--tls-key".into(),
            pki.server_key.display().to_string(),
            "--password-file".into(),
            passwords.display().to_string(),
            "--ca-dir".into(),
            pki.ca_dir.display().to_string(),
            "--allowed-dn-file".into(),
            pki.allowed_dn_file.display().to_string(),
            "--log-level".into(),
            "info,stratusd=debug".into(),
        ];
        let pdisk: Option<SocketAddr> =
            with_pdisk.then(|| format!("127.0.0.1:{}", free_port()).parse().unwrap());
        let mut args = args.to_vec();
        if let Some(addr) = pdisk {
            args.extend(["--pdisk-listen".to_string(), addr.to_string()]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let daemon = Daemon::start_in(dir, &refs);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(https).is_err() {
            assert!(Instant::now() < deadline, "the front door did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(addr) = pdisk {
            while std::net::TcpStream::connect(addr).is_err() {
                assert!(Instant::now() < deadline, "the pdisk service did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let mut site = Site {
            daemon,
            https,
            pdisk,
            vms: Vec::new(),
        };
        site.populate();
        site
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.https.port())
    }

    fn vm(&self, name: &str) -> i32 {
        self.vms
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
            .unwrap_or_else(|| panic!("no VM {name}"))
    }

    /// Two simulated hosts, a network users may use, VMs of alice, bob and John (the
    /// certificate user), one of them with a hostile name and template.
    fn populate(&mut self) {
        let mut c = self.daemon.client();
        for host in ["node-a", "node-b"] {
            rpc_result(&c.call(
                "one.host.allocate",
                &[
                    s(ADMIN),
                    s(host),
                    s("im_dummy"),
                    s("vmm_dummy"),
                    s("dummy"),
                    s("tm_dummy"),
                ],
            ))
            .expect("host allocated");
        }
        let net = rpc_result(&c.call(
            "one.vn.allocate",
            &[s(ADMIN), s("NAME=\"public\"\nTYPE=\"RANGED\"\nBRIDGE=\"br0\"\nNETWORK_ADDRESS=\"10.1.0.0\"\nNETWORK_SIZE=\"C\"\n")],
        ))
        .expect("network allocated");
        let net: i32 = net.parse().unwrap();
        rpc_result(&c.call(
            "one.vn.chmod",
            &[
                s(ADMIN),
                i(net),
                i(-1),
                i(-1),
                i(-1),
                i(1),
                i(-1),
                i(-1),
                i(1),
                i(-1),
                i(-1),
            ],
        ))
        .expect("network shared");
        let vms: [(&str, &str, String); 6] = [
            ("alice", "alice-web", String::new()),
            ("alice", "alice-db", String::new()),
            ("alice", "alice-batch", String::new()),
            (
                "alice",
                HOSTILE_NAME,
                format!("DESCRIPTION=\"{}\"\n", HOSTILE_TEXT.replace('"', "\\\"")),
            ),
            ("bob", "bob-private", String::new()),
            (JOHN_USER, "john-grid-job", String::new()),
        ];
        for (user, name, extra) in vms {
            let session = format!("{user}:{PLACEHOLDER}");
            let template = format!(
                "NAME=\"{}\"\nCPU=\"0.5\"\nMEMORY=\"512\"\nNIC=[NETWORK_ID=\"{net}\"]\n\
                 DISK=[TYPE=\"fs\",SIZE=\"1024\",FORMAT=\"ext3\"]\n\
                 GRAPHICS=[TYPE=\"vnc\",LISTEN=\"0.0.0.0\"]\n{extra}",
                name.replace('"', "\\\"")
            );
            let id = rpc_result(&c.call("one.vm.allocate", &[s(&session), s(&template)]))
                .unwrap_or_else(|e| panic!("VM {name}: {e:?}"));
            self.vms.push((name.to_string(), id.parse().unwrap()));
        }
        // Everything runs before the browsers look.
        let deadline = Instant::now() + Duration::from_secs(60);
        for (name, id) in &self.vms {
            loop {
                let doc = rpc_result(&c.call("one.vm.info", &[s(ADMIN), i(*id)])).unwrap();
                if field(&doc, "STATE").as_deref() == Some("3")
                    && field(&doc, "LCM_STATE").as_deref() == Some("3")
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "VM {name} did not reach RUNNING: {doc}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// A request to the persistent disk service's REST API as `user` (HTTP Basic under
    /// `/pswd`), as the StratusLab client sends it.
    fn pdisk(
        &self,
        user: &str,
        password: &str,
        method: &str,
        path: &str,
        form: &str,
    ) -> https::Answer {
        let addr = self.pdisk.expect("the site has the pdisk service");
        let mut conn = Https::connect(addr, &pki().ca_cert, None);
        conn.request(
            method,
            &format!("/pswd{path}"),
            &[
                ("Authorization", &basic(user, password)),
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Accept", "application/json"),
            ],
            form,
        )
        .expect("an answer of the pdisk service")
    }

    /// A new volume of `user`'s; its uuid.
    fn volume(&self, user: &str, password: &str, size: u32, tag: &str) -> String {
        let tag: String = form_urlencoded::byte_serialize(tag.as_bytes()).collect();
        let a = self.pdisk(
            user,
            password,
            "POST",
            "/disks/",
            &format!("size={size}&tag={tag}"),
        );
        assert_eq!(a.status, 201, "{}", a.body);
        let v: Value = serde_json::from_str(&a.body).unwrap();
        v["uuid"].as_str().unwrap().to_string()
    }

    /// The host of the VM's last history record.
    fn vm_host(&self, id: i32) -> String {
        let doc =
            rpc_result(&self.daemon.client().call("one.vm.info", &[s(ADMIN), i(id)])).unwrap();
        let last = doc.rfind("<HISTORY>").map(|at| &doc[at..]).unwrap_or("");
        field(last, "HOSTNAME").unwrap_or_default()
    }

    fn vm_state(&self, id: i32) -> (String, String) {
        let doc =
            rpc_result(&self.daemon.client().call("one.vm.info", &[s(ADMIN), i(id)])).unwrap();
        (
            field(&doc, "STATE").unwrap_or_default(),
            field(&doc, "LCM_STATE").unwrap_or_default(),
        )
    }
}

fn browser(tag: &str, client_cert: bool) -> Browser {
    webdriver::require_tools();
    let pki = pki();
    let home = temp_dir(tag);
    let cert = client_cert.then(|| (pki.john.chain[0].as_path(), pki.john.key.as_path()));
    let home = webdriver::profile(&home, &pki.ca_cert, cert);
    Browser::start(&home)
}

/// Full-page screenshot at `width` (the window grows to the page, up to 3,000 px).
fn shot(b: &Browser, name: &str, width: u32) {
    let height = b
        .execute("return document.documentElement.scrollHeight", vec![])
        .as_u64()
        .unwrap_or(900)
        .clamp(600, 3000) as u32;
    b.set_window(width, height + 100);
    std::thread::sleep(Duration::from_millis(150));
    b.screenshot(&screenshots_dir().join(format!("{name}.png")));
    b.set_window(1280, 900);
}

/// axe-core, installed by scripts/setup.sh --test from the npm registry (pinned version).
fn axe_source() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target/axe-core/node_modules/axe-core/axe.min.js");
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}: run scripts/setup.sh --test (it installs axe-core from the npm registry)",
                path.display()
            )
        })
    })
}

/// Checks the page against WCAG 2.1 A and AA with axe-core: no violation.
fn check_accessibility(b: &Browser, page: &str) {
    b.execute(&format!("{}\nreturn true;", axe_source()), vec![]);
    let violations = b.execute_async(
        "var done = arguments[arguments.length - 1];\
         axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})\
           .then(function (r) { done(r.violations.map(function (v) {\
             return v.id + ' (' + v.impact + '): ' + v.help + ' at ' +\
               v.nodes.slice(0, 3).map(function (n) { return n.target.join(' '); }).join(', ');\
           })); }, function (e) { done(['axe failed: ' + e]); });",
    );
    let list: Vec<String> = violations
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_else(|| vec![format!("unexpected answer {violations}")]);
    assert!(
        list.is_empty(),
        "accessibility violations on {page}:\n{}",
        list.join("\n")
    );
}

fn sign_in(b: &Browser, site: &Site, user: &str, password: &str) {
    b.goto(&site.url("/dashboard/login"));
    let field = b.find("#user");
    b.type_into(&field, user);
    b.type_into(&b.find("#password"), password);
    b.click(&b.find("form.stack button[type=submit]"));
    b.find("form[action='/dashboard/logout']");
}

fn sign_out(b: &Browser) {
    b.click(&b.find("form[action='/dashboard/logout'] button"));
    b.wait_for_text("You have signed out.", 15);
}

/// Marks the loaded page; [`still_same_page`] tells whether it was reloaded since.
fn mark_page(b: &Browser) {
    b.execute("window.__stratusdMark = 42; return true", vec![]);
}

fn still_same_page(b: &Browser) -> bool {
    b.execute("return window.__stratusdMark === 42", vec![]) == Value::Bool(true)
}

fn wait_events_open(b: &Browser) {
    b.wait_for(
        "the event stream opens",
        "return document.body.getAttribute('data-events') === 'open'",
        15,
    );
}

fn row_state(b: &Browser, id: i32) -> String {
    b.execute(
        "var r = document.querySelector('[data-vm=\"' + arguments[0] + '\"] [data-field=state]'); return r ? r.textContent : ''",
        vec![Value::from(id)],
    )
    .as_str()
    .unwrap_or_default()
    .to_string()
}

fn wait_row_state(b: &Browser, id: i32, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = row_state(b, id);
        if now == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "VM {id} shows {now:?}, not {state:?}; page:\n{}",
            b.body_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dashboard_in_a_browser() {
    webdriver::require_tools();
    let site = Site::start("dash-browser", true);
    let web = site.vm("alice-web");
    let db = site.vm("alice-db");
    let batch = site.vm("alice-batch");
    let hostile = site.vm(HOSTILE_NAME);
    let bobs = site.vm("bob-private");
    let johns = site.vm("john-grid-job");

    // --- An ordinary user with a password. ---
    let b = browser("dash-alice", false);
    b.goto(&site.url("/dashboard/vms"));
    // Not signed in: the sign-in form, which brings the browser back afterwards.
    b.find("#user");
    assert!(
        b.url().contains("/dashboard/login?next=%2Fdashboard%2Fvms"),
        "{}",
        b.url()
    );
    shot(&b, "01-sign-in", 1280);
    check_accessibility(&b, "the sign-in page");
    // A wrong password is refused.
    b.type_into(&b.find("#user"), "alice");
    b.type_into(&b.find("#password"), "wrong");
    b.click(&b.find("form.stack button[type=submit]"));
    b.wait_for_text("Wrong user name or password.", 15);
    b.type_into(&b.find("#password"), "s3cret");
    b.click(&b.find("form.stack button[type=submit]"));
    b.find("form[action='/dashboard/logout']");
    assert!(
        b.url().ends_with("/dashboard/vms"),
        "back to the page asked for: {}",
        b.url()
    );
    // Alice's VMs, nobody else's; the hostile name is text, not markup.
    let text = b.body_text();
    for name in ["alice-web", "alice-db", "alice-batch", HOSTILE_NAME] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    for name in ["bob-private", "john-grid-job"] {
        assert!(!text.contains(name), "{name} shown to alice:\n{text}");
    }
    assert_eq!(
        b.execute(
            "return document.querySelectorAll('main img').length",
            vec![]
        ),
        Value::from(0)
    );
    assert!(!text.contains("Hosts\n") && b.try_find("a[href='/dashboard/users']").is_none());
    shot(&b, "02-vms-user", 1280);
    check_accessibility(&b, "the VM list");

    // Overview.
    b.click(&b.find("nav a[href='/dashboard/']"));
    b.wait_for_text("Welcome, alice", 15);
    b.wait_for_text("Your use", 15);
    shot(&b, "03-overview-user", 1280);
    check_accessibility(&b, "a user's overview");

    // Another user's VM: refused with oned's message.
    b.goto(&site.url(&format!("/dashboard/vms/{bobs}")));
    let alice_uid = {
        let doc = rpc_result(&site.daemon.client().call(
            "one.user.info",
            &[s(&format!("alice:{PLACEHOLDER}")), i(-1)],
        ))
        .unwrap();
        field(&doc, "ID").unwrap()
    };
    b.wait_for_text(
        &format!(
            "[VirtualMachineInfo] User [{alice_uid}] : Not authorized to perform USE VM [{bobs}]."
        ),
        15,
    );
    assert!(!b.body_text().contains("bob-private"));

    // The hostile VM's page: its template text is shown as text, no script ran.
    b.goto(&site.url(&format!("/dashboard/vms/{hostile}")));
    b.find("#s-template");
    b.execute(
        "document.querySelector('details').open = true; return true",
        vec![],
    );
    b.wait_for_text(HOSTILE_TEXT, 15);
    assert_eq!(
        b.execute("return window.__xss === undefined", vec![]),
        Value::Bool(true)
    );
    assert_eq!(b.find_all("main img").len(), 0);
    assert_eq!(b.find_all("[onmouseover]").len(), 0);

    // Alice's VM page: NICs with IP and MAC, disks, history, log; shut it down from the page.
    b.goto(&site.url(&format!("/dashboard/vms/{web}")));
    wait_events_open(&b);
    let text = b.body_text();
    for needle in [
        "Network interfaces",
        "10.1.0.",
        "02:00:0a:01:00:",
        "Disks",
        "History",
        "node-",
        "Log",
        "New VM state is RUNNING",
    ] {
        assert!(
            text.to_lowercase().contains(&needle.to_lowercase()),
            "{needle:?} missing from the VM page:\n{text}"
        );
    }
    assert_eq!(row_state(&b, web), "RUNNING");
    // Ordinary users get no deploy or migrate.
    assert!(b.try_find("a[data-dialog='dialog-migrate']").is_none());
    shot(&b, "04-vm-detail", 1280);
    check_accessibility(&b, "a VM's page");
    mark_page(&b);
    b.click(&b.find("a[data-dialog='dialog-shutdown']"));
    let dialog_open = b.execute(
        "return document.getElementById('dialog-shutdown').open",
        vec![],
    );
    assert_eq!(
        dialog_open,
        Value::Bool(true),
        "the confirmation asks first"
    );
    shot(&b, "05-vm-confirm", 1280);
    b.click(&b.find("#dialog-shutdown button[type=submit]"));
    wait_row_state(&b, web, "DONE");
    assert!(still_same_page(&b), "the state arrived without a page load");
    b.wait_for_text("Shutdown requested.", 15);
    assert_eq!(site.vm_state(web).0, "6", "the core has it DONE");
    // Once DONE, the page (refreshed in place by the live update) offers no shutdown.
    b.wait_for(
        "the actions follow the state",
        "return !document.querySelector(\"a[data-dialog='dialog-shutdown']\")",
        15,
    );
    assert!(still_same_page(&b));

    // A change made elsewhere (oneadmin over XML-RPC) arrives live in the VM list.
    b.goto(&site.url("/dashboard/vms"));
    wait_events_open(&b);
    mark_page(&b);
    assert_eq!(row_state(&b, db), "RUNNING");
    rpc_result(
        &site
            .daemon
            .client()
            .call("one.vm.action", &[s(ADMIN), s("stop"), i(db)]),
    )
    .expect("stop");
    wait_row_state(&b, db, "STOPPED");
    assert!(still_same_page(&b), "the list was updated in place");

    // An action the core refuses shows oned's message: hold a RUNNING VM (the no-script
    // confirmation page accepts any action; the core decides).
    b.goto(&site.url(&format!("/dashboard/vms/{batch}?confirm=hold")));
    b.click(&b.find("section.confirm button[type=submit]"));
    b.wait_for_text("[VirtualMachineAction] Wrong state to perform action", 15);
    assert_eq!(
        site.vm_state(batch),
        ("3".into(), "3".into()),
        "nothing changed"
    );

    // --- Volumes (the pdisk service is on): alice's own, with their mounts. ---
    let data = site.volume("alice", "s3cret", 2, VOLUME_TAG);
    let scratch = site.volume("alice", "s3cret", 1, "scratch");
    let vault = site.volume("bob", "b0bpass", 3, "bob-vault");
    let node = site.vm_host(batch);
    let attach = site.pdisk(
        "alice",
        "s3cret",
        "POST",
        &format!("/disks/{scratch}/mounts/"),
        &format!("node={node}&vm_id={batch}"),
    );
    assert_eq!(attach.status, 200, "{}", attach.body);
    b.click(&b.find("nav a[href='/dashboard/volumes']"));
    b.wait_for_text("scratch", 15);
    let text = b.body_text();
    for needle in [
        data.as_str(),
        scratch.as_str(),
        VOLUME_TAG,
        "2\u{a0}GiB",
        "DATA_IMAGE_RAW_READ_WRITE",
        "private",
        "1\u{a0}of\u{a0}10",
        &format!("VM {batch} on {node}, hot-plugged as vdz"),
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
    assert!(
        !text.contains(&vault) && !text.contains("bob-vault"),
        "{text}"
    );
    assert_eq!(
        b.execute("return window.__xss === undefined", vec![]),
        Value::Bool(true),
        "the hostile tag is text"
    );
    // A volume in use offers a detach, not a delete.
    assert!(b
        .try_find(&format!(
            "tr[data-volume='{scratch}'] a[data-dialog^='vol-delete']"
        ))
        .is_none());
    shot(&b, "15-volumes-user", 1280);
    check_accessibility(&b, "the volumes page");
    // Detach, confirmed in its dialog.
    b.click(&b.find(&format!(
        "tr[data-volume='{scratch}'] a[data-dialog^='vol-detach']"
    )));
    check_accessibility(&b, "the detach dialog");
    shot(&b, "16-volume-detach-confirm", 1280);
    b.click(&b.find("dialog[open] button[type=submit]"));
    b.wait_for_text("Volume detached.", 30);
    let mounts = site.pdisk(
        "alice",
        "s3cret",
        "GET",
        &format!("/disks/{scratch}/mounts/"),
        "",
    );
    let mounts: Value = serde_json::from_str(&mounts.body).unwrap();
    assert_eq!(mounts, Value::Array(Vec::new()), "the mount is gone");
    // Delete, confirmed: the service has it in the quarantine (404 for alice).
    b.click(&b.find(&format!(
        "tr[data-volume='{data}'] a[data-dialog^='vol-delete']"
    )));
    b.click(&b.find("dialog[open] button[type=submit]"));
    b.wait_for_text("Volume deleted (into the quarantine).", 15);
    assert_eq!(
        site.pdisk("alice", "s3cret", "GET", &format!("/disks/{data}/"), "")
            .status,
        404
    );
    assert!(!b.body_text().contains(&data));
    // bob's volume: no confirmation offered, and a forged post gets the service's refusal.
    b.goto(&site.url(&format!("/dashboard/volumes?confirm=delete&volume={vault}")));
    b.find("main table");
    assert!(b.try_find("section.confirm").is_none());
    let alice_basic = basic("alice", "s3cret");
    let page = fetch(
        &site,
        "GET",
        "/dashboard/volumes",
        &[("Authorization", &alice_basic)],
        "",
    );
    let forged = fetch(
        &site,
        "POST",
        &format!("/dashboard/volumes/{vault}/delete"),
        &[
            ("Authorization", &alice_basic),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &format!("csrf={}", csrf_of(&page.body)),
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(
        forged.body.contains(&format!(
            "insufficient access rights to view disk ({vault})"
        )),
        "{}",
        forged.body
    );
    assert_eq!(
        site.pdisk("bob", "b0bpass", "GET", &format!("/disks/{vault}/"), "")
            .status,
        200,
        "bob's volume is untouched"
    );

    // Sign out: the session is gone.
    sign_out(&b);
    b.goto(&site.url("/dashboard/vms"));
    b.find("#user");
    assert!(b.url().contains("/dashboard/login"));

    // --- oneadmin: the whole site. ---
    sign_in(&b, &site, "oneadmin", "password");
    b.wait_for_text("Site overview", 15);
    let text = b.body_text();
    for needle in [
        "Hosts",
        "node-a",
        "node-b",
        "CPU allocated",
        "Memory allocated",
        "Networks",
        "public",
        "Users by use",
        "alice",
        "bob",
        "Image cache",
        "Quarantine",
    ] {
        // Lower case: innerText follows the style sheet's text-transform.
        assert!(
            text.to_lowercase().contains(&needle.to_lowercase()),
            "{needle:?} missing from the admin overview:\n{text}"
        );
    }
    shot(&b, "06-overview-admin", 1280);
    check_accessibility(&b, "the site overview");
    b.click(&b.find("nav a[href='/dashboard/vms']"));
    b.wait_for_text("bob-private", 15);
    b.wait_for_text("john-grid-job", 15);
    shot(&b, "07-vms-admin", 1280);
    // Filter by owner and state.
    b.goto(&site.url("/dashboard/vms?owner=alice&state=running"));
    let text = b.body_text();
    assert!(
        text.contains("alice-batch") && !text.contains("bob-private") && !text.contains("alice-db"),
        "{text}"
    );
    // oneadmin may migrate a running VM.
    b.goto(&site.url(&format!("/dashboard/vms/{bobs}")));
    b.find("a[data-dialog='dialog-migrate']");
    wait_events_open(&b);
    mark_page(&b);
    let from = site.vm_host(bobs);
    b.click(&b.find("a[data-dialog='dialog-migrate']"));
    shot(&b, "08-vm-migrate-admin", 1280);
    check_accessibility(&b, "the migrate dialog");
    b.click(&b.find("#live-migrate"));
    b.click(&b.find("#dialog-migrate button[type=submit]"));
    b.wait_for_text("Migration requested.", 15);
    let deadline = Instant::now() + Duration::from_secs(30);
    while site.vm_state(bobs) != ("3".into(), "3".into()) || site.vm_host(bobs) == from {
        assert!(Instant::now() < deadline, "the migration did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    let to = site.vm_host(bobs);
    b.wait_for(
        "the new host arrives on the page",
        &format!(
            "var h = document.querySelector('dl.facts [data-field=host]'); \
             return !!h && h.textContent === '{to}' && \
             document.querySelector('[data-vm] [data-field=state]').textContent === 'RUNNING'"
        ),
        30,
    );
    assert!(still_same_page(&b), "migrated without a page load");
    // Hosts: disable one, from its confirmation.
    b.goto(&site.url("/dashboard/hosts"));
    wait_events_open(&b);
    shot(&b, "09-hosts-admin", 1280);
    check_accessibility(&b, "the hosts page");
    let host_b = b.find("tr[data-host] a.button[data-dialog]");
    b.click(&host_b);
    b.click(&b.find("dialog[open] button[type=submit]"));
    b.wait_for_text("DISABLED", 15);
    let doc = rpc_result(&site.daemon.client().call("one.hostpool.info", &[s(ADMIN)])).unwrap();
    assert!(
        doc.contains("<STATE>4</STATE>"),
        "a host is disabled in the core: {doc}"
    );
    b.goto(&site.url("/dashboard/networks"));
    b.wait_for_text("public", 15);
    shot(&b, "10-networks", 1280);
    b.goto(&site.url("/dashboard/users"));
    b.wait_for_text("alice", 15);
    shot(&b, "11-users-admin", 1280);
    // Every user's volumes (alice's deleted one too, in the quarantine).
    b.goto(&site.url("/dashboard/volumes"));
    b.wait_for_text("bob-vault", 15);
    let text = b.body_text();
    assert!(text.contains("scratch") && text.contains(&data), "{text}");
    assert!(text.to_lowercase().contains("quarantine since"), "{text}");
    shot(&b, "17-volumes-admin", 1280);
    check_accessibility(&b, "the users page");
    // The narrow layout.
    b.goto(&site.url("/dashboard/"));
    b.find("main");
    shot(&b, "12-overview-narrow", 390);
    b.goto(&site.url("/dashboard/vms"));
    b.find("main table");
    shot(&b, "13-vms-narrow", 390);
    sign_out(&b);
    drop(b);

    // --- A grid user with a client certificate. ---
    let c = browser("dash-john", true);
    c.goto(&site.url("/dashboard/"));
    let button = c.find("#cert-signin");
    assert!(c
        .body_text()
        .contains("CN=John Smith,OU=Testing,O=StratusLab,C=EU"));
    shot(&c, "14-sign-in-certificate", 1280);
    check_accessibility(&c, "the certificate sign-in page");
    c.click(&button);
    c.find("form[action='/dashboard/logout']");
    c.wait_for_text("Welcome, CN=John Smith", 15);
    c.goto(&site.url("/dashboard/vms"));
    let text = c.body_text();
    assert!(text.contains("john-grid-job"), "{text}");
    assert!(
        !text.contains("alice-web") && !text.contains("bob-private"),
        "{text}"
    );
    c.goto(&site.url(&format!("/dashboard/vms/{web}")));
    c.wait_for_text("Not authorized to perform USE VM", 15);
    c.goto(&site.url(&format!("/dashboard/vms/{johns}")));
    c.wait_for_text("john-grid-job", 15);
    sign_out(&c);
    drop(c);

    // The daemon logged the sign-ins and the action.
    let log = read_file(&site.daemon.dir.join("daemon.log"));
    assert!(log.contains("dashboard: signed in"), "{log}");
    assert!(log.contains("dashboard: VM action"), "{log}");
    assert!(!log.contains("s3cret"), "no password in the log");
}

/// One request over its own TLS connection.
fn fetch(
    site: &Site,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> https::Answer {
    let mut conn = Https::connect(site.https, &pki().ca_cert, None);
    conn.request(method, path, headers, body)
        .expect("an HTTP answer")
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..].split('"').next().unwrap().to_string()
}

#[test]
fn dashboard_over_http_for_scripts() {
    let site = Site::start("dash-http", false);
    let alice = basic("alice", "s3cret");
    let bobs = site.vm("bob-private");
    let web = site.vm("alice-web");

    // No credentials: pages send people to the sign-in form; static files need none.
    let a = fetch(&site, "GET", "/dashboard/vms?state=running", &[], "");
    assert_eq!(a.status, 303);
    assert_eq!(
        a.header("location"),
        Some("/dashboard/login?next=%2Fdashboard%2Fvms%3Fstate%3Drunning")
    );
    let css = fetch(&site, "GET", "/dashboard/static/dashboard.css", &[], "");
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    assert_eq!(
        fetch(&site, "GET", "/dashboard/static/../../etc/passwd", &[], "").status,
        404
    );

    // Basic: a page for a script, with the headers every page has.
    let page = fetch(
        &site,
        "GET",
        "/dashboard/vms",
        &[("Authorization", &alice)],
        "",
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("alice-web") && !page.body.contains("bob-private"));
    assert!(page
        .body
        .contains("x&quot; onmouseover=&quot;window.__xss=1&quot; data-x=&#39;&gt;"));
    assert!(!page.body.contains(HOSTILE_NAME));
    // No pdisk service on this site: no volumes page, and no link to it.
    assert!(!page.body.contains("/dashboard/volumes"), "{}", page.body);
    let volumes = fetch(
        &site,
        "GET",
        "/dashboard/volumes",
        &[("Authorization", &alice)],
        "",
    );
    assert_eq!(volumes.status, 404);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    // Wrong password: 401 with the realm, as /pswd answers.
    let wrong = fetch(
        &site,
        "GET",
        "/dashboard/",
        &[("Authorization", &basic("alice", "nope"))],
        "",
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong
        .header("www-authenticate")
        .unwrap()
        .contains("StratusLab Password Realm"));
    // Not in cloud-access: 403.
    let guest = fetch(
        &site,
        "GET",
        "/dashboard/",
        &[("Authorization", &basic("guest", "pw"))],
        "",
    );
    assert_eq!(guest.status, 403);
    // Another user's VM: 403 with oned's text.
    let refused = fetch(
        &site,
        "GET",
        &format!("/dashboard/vms/{bobs}"),
        &[("Authorization", &alice)],
        "",
    );
    assert_eq!(refused.status, 403);
    assert!(
        refused
            .body
            .contains(&format!("Not authorized to perform USE VM [{bobs}]")),
        "{}",
        refused.body
    );

    // Actions need the CSRF token of the page and a same-origin post.
    let form = [
        ("Authorization", alice.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let action_path = format!("/dashboard/vms/{web}/action");
    let no_token = fetch(&site, "POST", &action_path, &form, "action=reboot");
    assert_eq!(no_token.status, 403);
    let vm_page = fetch(
        &site,
        "GET",
        &format!("/dashboard/vms/{web}"),
        &[("Authorization", &alice)],
        "",
    );
    let token = csrf_of(&vm_page.body);
    let body = format!("action=reboot&csrf={token}");
    let mut cross = form.to_vec();
    cross.push(("Origin", "https://evil.example"));
    assert_eq!(
        fetch(&site, "POST", &action_path, &cross, &body).status,
        403
    );
    let mut cross_site = form.to_vec();
    cross_site.push(("Sec-Fetch-Site", "cross-site"));
    assert_eq!(
        fetch(&site, "POST", &action_path, &cross_site, &body).status,
        403
    );
    let mut same = form.to_vec();
    same.push(("Origin", "https://localhost"));
    let done = fetch(&site, "POST", &action_path, &same, &body);
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.header("location"),
        Some(format!("/dashboard/vms/{web}?done=reboot").as_str())
    );
    // Bob's token is not alice's, and bob cannot act on alice's VM.
    let bob = basic("bob", "b0bpass");
    let bob_page = fetch(
        &site,
        "GET",
        "/dashboard/vms",
        &[("Authorization", &bob)],
        "",
    );
    let bob_token = csrf_of(&bob_page.body);
    assert_ne!(bob_token, token);
    let bob_form = [
        ("Authorization", bob.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let refused = fetch(
        &site,
        "POST",
        &action_path,
        &bob_form,
        &format!("action=finalize&csrf={bob_token}"),
    );
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("[VirtualMachineAction]"),
        "{}",
        refused.body
    );
    assert_eq!(site.vm_state(web).0, "3", "alice's VM untouched");
    // Not a form: refused before anything runs; an oversized form too.
    let xml = fetch(
        &site,
        "POST",
        &action_path,
        &[("Authorization", &alice), ("Content-Type", "text/xml")],
        "<x/>",
    );
    assert_eq!(xml.status, 415);
    let huge = format!("csrf={token}&action=reboot&pad={}", "x".repeat(40_000));
    assert_eq!(fetch(&site, "POST", &action_path, &form, &huge).status, 413);
    // Ordinary users cannot disable hosts: the core refuses, with oned's text.
    let refused = fetch(
        &site,
        "POST",
        "/dashboard/hosts/0/enable",
        &form,
        &format!("enable=no&csrf={token}"),
    );
    assert!(refused.body.contains("[HostEnable]"), "{}", refused.body);
    assert_eq!(refused.status, 403);

    // Sign-in form: needs its own anti-forgery cookie; a forged sign-in is refused.
    let forged = fetch(
        &site,
        "POST",
        "/dashboard/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "csrf=x&user=alice&password=s3cret",
    );
    assert_eq!(forged.status, 403);
    assert!(forged
        .header("set-cookie")
        .is_some_and(|c| !c.contains("stratusd-session")));
    // A proper sign-in gets a __Host- cookie with every protection.
    let login_page = fetch(&site, "GET", "/dashboard/login", &[], "");
    let cookie = login_page
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let token = csrf_of(&login_page.body);
    let signed = fetch(
        &site,
        "POST",
        "/dashboard/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
        ],
        &format!("csrf={token}&user=alice&password=s3cret&next=%2F%2Fevil.example%2F"),
    );
    assert_eq!(signed.status, 303);
    assert_eq!(
        signed.header("location"),
        Some("/dashboard/"),
        "next cannot leave the dashboard"
    );
    let session = signed
        .headers
        .iter()
        .find(|(k, v)| {
            k.eq_ignore_ascii_case("set-cookie") && v.starts_with("__Host-stratusd-session=")
        })
        .map(|(_, v)| v.clone())
        .expect("a session cookie");
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(attribute), "{session}");
    }
    let cookie = session.split(';').next().unwrap();
    let overview = fetch(&site, "GET", "/dashboard/", &[("Cookie", cookie)], "");
    assert_eq!(overview.status, 200);
    assert!(overview.body.contains("Welcome, alice"));
    // Sign out ends the session server-side.
    let token = csrf_of(&overview.body);
    let out = fetch(
        &site,
        "POST",
        "/dashboard/logout",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", cookie),
            ("Origin", "https://localhost"),
        ],
        &format!("csrf={token}"),
    );
    assert_eq!(out.status, 303);
    let after = fetch(&site, "GET", "/dashboard/", &[("Cookie", cookie)], "");
    assert_eq!(after.status, 303, "the old cookie no longer works");
}
