//! `stratusd import` and `stratusd export` against databases written by a real oned 3.2
//! (fixtures/oned-3.2-db): after an import every pool and `.info` answer oned gave is given
//! byte for byte; ids continue where oned stopped; export writes oned's rows back; bad input is
//! refused without writing anything.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/oned-3.2-db")
        .join(rel)
}

pub fn stratusd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stratusd"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("stratusd runs")
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Imports in place: the data directory plays oned's var directory, so the documents keep
/// their `/var/lib/one/` paths as in an import into /var/lib/one.
pub fn import_into(dir: &Path, from: &str, extra: &[&str]) -> Output {
    let d = dir.to_str().unwrap();
    let mut args = vec![
        "import",
        "--from",
        from,
        "--data-dir",
        d,
        "--old-var-dir",
        d,
    ];
    args.extend_from_slice(extra);
    stratusd(&args)
}

/// The daemon on an imported data directory, with monitoring, polling and scheduling not due
/// for a long time: nothing changes the documents while they are compared.
pub fn start_imported(dir: &Path) -> Daemon {
    Daemon::start_in(dir.to_path_buf(), IMPORTED_AT_REST)
}

/// Monitoring, polling and scheduling passes far in the future. The scheduler in particular:
/// its first pass places the imported PENDING VMs (as mm_sched would), which changes the VM
/// and host documents under a comparison that began before it (the scale test once saw a
/// host's MEM_USAGE change between `one.vmpool.info` and `one.hostpool.info`).
const IMPORTED_AT_REST: &[&str] = &[
    "--host-monitoring-interval",
    "100000000",
    "--vm-polling-interval",
    "100000000",
    "--sched-interval",
    "100000000",
];

fn param(v: &serde_json::Value) -> Param {
    match v {
        serde_json::Value::Number(n) => i(n.as_i64().unwrap() as i32),
        serde_json::Value::String(t) => s(t),
        serde_json::Value::Bool(b) => Param::B(*b),
        other => panic!("unexpected parameter {other}"),
    }
}

fn first_difference(want: &str, got: &str) -> String {
    let at = want
        .bytes()
        .zip(got.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(want.len().min(got.len()));
    let from = at.saturating_sub(80);
    format!(
        "at byte {at}:\n   oned: …{}…\n   stratusd: …{}…",
        &want[from.min(want.len())..(at + 120).min(want.len())],
        &got[from.min(got.len())..(at + 120).min(got.len())]
    )
}

/// Every pool and `.info` answer of `expected.json` asked again; the differences found.
pub fn compare_with_oned(c: &mut Client, expected: &serde_json::Value) -> (usize, Vec<String>) {
    let mut differences = Vec::new();
    let mut compared = 0;
    let calls = expected["meta"]["pool_calls"].as_object().unwrap();
    for (pool, want) in expected["pools"].as_object().unwrap() {
        let call = calls[pool].as_array().unwrap();
        let method = call[0].as_str().unwrap();
        let mut params = vec![s(ADMIN)];
        params.extend(call[1..].iter().map(param));
        let got = rpc_result(&c.call(method, &params));
        let want = want.as_str().unwrap();
        compared += 1;
        match got {
            Ok(got) if got == want => {}
            Ok(got) => differences.push(format!("{method}: {}", first_difference(want, &got))),
            Err(e) => differences.push(format!("{method}: failed {e:?}")),
        }
    }
    for (kind, objects) in expected["info"].as_object().unwrap() {
        for (id, want) in objects.as_object().unwrap() {
            let method = format!("one.{kind}.info");
            let got = rpc_result(&c.call(&method, &[s(ADMIN), i(id.parse().unwrap())]));
            let want = want.as_str().unwrap();
            compared += 1;
            match got {
                Ok(got) if got == want => {}
                Ok(got) => {
                    differences.push(format!("{method}({id}): {}", first_difference(want, &got)))
                }
                Err(e) => differences.push(format!("{method}({id}): failed {e:?}")),
            }
        }
    }
    (compared, differences)
}

pub fn expected(backend: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture(&format!("{backend}/expected.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn sqlite_from() -> String {
    format!("sqlite:{}", fixture("sqlite/one.db").display())
}

/// Ids continue where oned stopped, and new objects see the imported leases and counters.
fn check_next_ids_and_leases(c: &mut Client) {
    let ok = |answer: String| rpc_result(&answer).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        ok(c.call(
            "one.user.allocate",
            &[s(ADMIN), s("frank"), s("pw"), s("core")]
        )),
        "8"
    );
    assert_eq!(
        ok(c.call("one.group.allocate", &[s(ADMIN), s("biology")])),
        "102"
    );
    // The ACL ids have a gap at the end (rule 10 was added and deleted).
    assert_eq!(
        ok(c.call(
            "one.acl.addrule",
            &[s(ADMIN), s("0x400000000"), s("0x29400000000"), s("0x1")]
        )),
        "11"
    );
    assert_eq!(
        ok(c.call(
            "one.host.allocate",
            &[
                s(ADMIN),
                s("node-03"),
                s("im_dummy"),
                s("vmm_dummy"),
                s("dummy"),
                s("tm_dummy")
            ]
        )),
        "3"
    );
    assert_eq!(
        ok(c.call(
            "one.template.allocate",
            &[s(ADMIN), s("NAME=t3\nCPU=1\nMEMORY=64")]
        )),
        "2"
    );
    assert_eq!(
        ok(c.call(
            "one.vn.allocate",
            &[
                s(ADMIN),
                s("NAME=n2\nTYPE=FIXED\nBRIDGE=br2\nLEASES=[IP=10.9.0.1]")
            ]
        )),
        "2"
    );
    // The first free address of `public` is 10.1.0.6 (VM 7, DONE, gave it back; .250 is held).
    let vid = ok(c.call(
        "one.vm.allocate",
        &[
            s(ADMIN),
            s("NAME=after-import\nCPU=0.1\nMEMORY=32\nNIC=[NETWORK_ID=0]\nDISK=[IMAGE_ID=0]"),
        ],
    ));
    assert_eq!(vid, "14");
    let vm = ok(c.call("one.vm.info", &[s(ADMIN), i(14)]));
    assert!(vm.contains("<IP><![CDATA[10.1.0.6]]></IP>"), "{vm}");
    let img = ok(c.call("one.image.info", &[s(ADMIN), i(0)]));
    assert_eq!(field(&img, "RUNNING_VMS").as_deref(), Some("6"), "{img}");
    let leases = vn_leases(c, 0);
    assert!(leases.iter().any(|l| l.ip == "10.1.0.6" && l.vid == 14));
    assert!(leases
        .iter()
        .any(|l| l.ip == "10.1.0.250" && l.vid == -1 && l.used));
}

#[test]
fn sqlite_import_answers_every_call_as_oned_did() {
    let dir = temp_dir("migrate-sqlite");
    let dry = import_into(&dir, &sqlite_from(), &["--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry));
    let out = String::from_utf8_lossy(&dry.stdout).to_string();
    for line in [
        "vms                14       14",
        "acl rules          10       11",
        "groups              4      102",
        "warnings: none",
        "dry run: nothing written",
    ] {
        assert!(out.contains(line), "{line:?} missing in\n{out}");
    }
    assert!(
        !dir.join("stratusd.db").exists(),
        "a dry run wrote a database"
    );

    // Where node_exporter's textfile collector would look (outside the data directory).
    let progress_file = temp_dir("migrate-progress").join("stratusd_import.prom");
    std::fs::create_dir_all(progress_file.parent().unwrap()).unwrap();
    let o = import_into(
        &dir,
        &sqlite_from(),
        &["--progress-file", progress_file.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("imported into"),
        "{}",
        text(&o)
    );
    // Progress: per table, the rows written of its total, in the log and in the textfile
    // (Prometheus text format), which ends with every table done and the phase `done`.
    let log = String::from_utf8_lossy(&o.stderr).to_string();
    let prom = std::fs::read_to_string(&progress_file).unwrap();
    for (table, rows) in [("vm_pool", 14), ("acl", 10), ("group_pool", 4)] {
        assert!(
            log.contains(&format!("import: {table} {rows}/{rows} rows written")),
            "{table}: {log}"
        );
        assert!(
            prom.contains(&format!(
                "stratusd_import_rows{{table=\"{table}\"}} {rows}\n"
            )),
            "{prom}"
        );
        assert!(
            prom.contains(&format!(
                "stratusd_import_rows_done{{table=\"{table}\"}} {rows}\n"
            )),
            "{prom}"
        );
    }
    for phase in ["read", "write", "verify", "done"] {
        assert!(
            log.contains(&format!("phase=\"{phase}\"")) || log.contains(&format!("phase={phase}")),
            "{phase}: {log}"
        );
    }
    assert!(
        prom.contains("stratusd_import_phase{phase=\"done\"} 1\n"),
        "{prom}"
    );
    assert!(
        prom.contains("stratusd_import_phase{phase=\"write\"} 0\n"),
        "{prom}"
    );
    // Only the file itself is left in its directory (written aside, then renamed).
    assert_eq!(
        std::fs::read_dir(progress_file.parent().unwrap())
            .unwrap()
            .count(),
        1
    );
    let _ = std::fs::remove_dir_all(progress_file.parent().unwrap());
    // Nothing of the import's temporary files is left.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["stratusd.db".to_string()], "{names:?}");

    let mut d = start_imported(&dir);
    let mut c = d.client();
    let (compared, differences) = compare_with_oned(&mut c, &expected("sqlite"));
    assert!(compared > 40, "only {compared} answers compared");
    assert!(
        differences.is_empty(),
        "{} of {compared} answers differ from oned's:\n{}",
        differences.len(),
        differences.join("\n")
    );
    check_next_ids_and_leases(&mut c);
    // Not even --force replaces the database of a running daemon.
    let busy = import_into(&dir, &sqlite_from(), &["--force"]);
    assert!(
        !busy.status.success() && text(&busy).contains("is in use: stop stratusd"),
        "{}",
        text(&busy)
    );
    // Nor does a second daemon start on it.
    let second = stratusd(&[
        "serve",
        "--data-dir",
        dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(
        !second.status.success() && text(&second).contains("is in use by another stratusd"),
        "{}",
        text(&second)
    );
    assert_eq!(d.stop(), Some(0));

    // A second import refuses to replace the database, and changes nothing.
    let before = std::fs::read(dir.join("stratusd.db")).unwrap();
    let again = import_into(&dir, &sqlite_from(), &[]);
    assert!(!again.status.success());
    assert!(
        text(&again).contains("already holds a stratusd database")
            && text(&again).contains("--force"),
        "{}",
        text(&again)
    );
    assert_eq!(std::fs::read(dir.join("stratusd.db")).unwrap(), before);
    // --force replaces it with the imported site again (the allocations above are gone).
    let forced = import_into(&dir, &sqlite_from(), &["--force"]);
    assert!(forced.status.success(), "{}", text(&forced));
    let mut d = start_imported(&dir);
    let mut c = d.client();
    let (_, differences) = compare_with_oned(&mut c, &expected("sqlite"));
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    assert_eq!(d.stop(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every row of an oned table, sorted, for comparing databases.
pub fn sqlite_rows(path: &Path, table: &str) -> Vec<Vec<String>> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn.prepare(&format!("SELECT * FROM `{table}`")).unwrap();
    let n = stmt.column_count();
    let mut rows: Vec<Vec<String>> = stmt
        .query_map([], |r| {
            (0..n)
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => "NULL".to_string(),
                        rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                        rusqlite::types::ValueRef::Real(v) => format!("{v:?}"),
                        rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                    })
                })
                .collect()
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.sort();
    rows
}

pub fn sqlite_schema(path: &Path) -> Vec<String> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn
        .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

const ONED_TABLES: [&str; 11] = [
    "vm_pool",
    "history",
    "host_pool",
    "network_pool",
    "leases",
    "group_pool",
    "user_pool",
    "image_pool",
    "template_pool",
    "acl",
    "pool_control",
];

#[test]
fn sqlite_export_writes_oneds_rows_and_round_trips() {
    let dir = temp_dir("migrate-export");
    let o = import_into(&dir, &sqlite_from(), &[]);
    assert!(o.status.success(), "{}", text(&o));
    let out = dir.join("back");
    std::fs::create_dir_all(&out).unwrap();
    let one_db = out.join("one.db");
    let quota_db = out.join("onequota.db");
    let to = format!("sqlite:{}", one_db.display());
    let d = dir.to_str().unwrap();
    let e = stratusd(&[
        "export",
        "--data-dir",
        d,
        "--to",
        &to,
        "--quota-db",
        quota_db.to_str().unwrap(),
    ]);
    assert!(e.status.success(), "{}", text(&e));
    // The schema and every row are oned's own; db_versioning has the same version.
    let original = fixture("sqlite/one.db");
    assert_eq!(sqlite_schema(&one_db), sqlite_schema(&original));
    for table in ONED_TABLES {
        assert_eq!(
            sqlite_rows(&one_db, table),
            sqlite_rows(&original, table),
            "table {table}"
        );
    }
    let version = |p: &Path| {
        sqlite_rows(p, "db_versioning")
            .into_iter()
            .map(|r| r[1].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(version(&one_db), version(&original));
    assert_eq!(
        sqlite_schema(&quota_db),
        sqlite_schema(&fixture("sqlite/onequota.db"))
    );
    assert_eq!(
        sqlite_rows(&quota_db, "quotas"),
        sqlite_rows(&fixture("sqlite/onequota.db"), "quotas")
    );
    // Exporting again over it needs --force.
    let again = stratusd(&["export", "--data-dir", d, "--to", &to]);
    assert!(
        !again.status.success() && text(&again).contains("--force"),
        "{}",
        text(&again)
    );

    // import → export → import gives the same answers.
    let dir2 = temp_dir("migrate-roundtrip");
    let o = import_into(&dir2, &to, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("warnings: none"),
        "{}",
        text(&o)
    );
    let mut daemon = start_imported(&dir2);
    let mut c = daemon.client();
    let (compared, differences) = compare_with_oned(&mut c, &expected("sqlite"));
    assert!(
        differences.is_empty(),
        "{} of {compared}:\n{}",
        differences.len(),
        differences.join("\n")
    );
    assert_eq!(daemon.stop(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}

/// A copy of the fixture's one.db changed by `sql`.
fn altered_copy(dir: &Path, name: &str, sql: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy(fixture("sqlite/one.db"), &p).unwrap();
    let conn = rusqlite::Connection::open(&p).unwrap();
    conn.execute_batch(sql).unwrap();
    p
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn refuses_other_versions_and_corrupt_databases_and_writes_nothing() {
    let src = temp_dir("migrate-bad-src");
    let target = temp_dir("migrate-bad-target");
    let cases: Vec<(PathBuf, &str)> = vec![
        (
            altered_copy(&src, "v34.db", "UPDATE db_versioning SET version = '3.4.0'"),
            "this is an OpenNebula 3.4.0 database; stratusd imports OpenNebula 3.2 databases only",
        ),
        (
            altered_copy(&src, "v30.db", "UPDATE db_versioning SET version = '3.0.0'"),
            "this is an OpenNebula 3.0.0 database; stratusd imports OpenNebula 3.2 databases only: upgrade it with OpenNebula 3.2's `onedb upgrade` first",
        ),
        (
            altered_copy(&src, "v2.db", "DROP TABLE db_versioning"),
            "older than 3.0",
        ),
        (
            altered_copy(&src, "body.db", "UPDATE vm_pool SET body = '<VM><ID>3</ID><NAME>x' WHERE oid = 3"),
            "corrupt database: vm_pool row 3: ",
        ),
        (
            altered_copy(&src, "state.db", "UPDATE vm_pool SET body = replace(body, '<LCM_STATE>3</LCM_STATE>', '<LCM_STATE>42</LCM_STATE>') WHERE oid = 0"),
            "corrupt database: vm_pool row 0: <LCM_STATE> 42 is not a 3.2 value",
        ),
        (
            altered_copy(&src, "lease.db", "UPDATE leases SET body = '<LEASE><IP>1</IP></LEASE>' WHERE oid = 1 AND ip = 3232238081"),
            "corrupt database: leases row 1/3232238081",
        ),
        (
            altered_copy(&src, "missing.db", "DROP TABLE history"),
            "without its `history` table",
        ),
    ];
    let mut cases = cases;
    // A damaged file: pages overwritten in the middle.
    let damaged = src.join("damaged.db");
    let mut bytes = std::fs::read(fixture("sqlite/one.db")).unwrap();
    for b in bytes.iter_mut().skip(8192).take(40_000) {
        *b = 0x5a;
    }
    std::fs::write(&damaged, &bytes).unwrap();
    cases.push((damaged, "corrupt database: "));
    let not_db = src.join("notes.txt");
    std::fs::write(
        &not_db,
        "not a database at all, just some text that is long enough to have a header",
    )
    .unwrap();
    cases.push((not_db, "corrupt database: "));
    // stratusd's own database is not oned's.
    let o = import_into(&target, &sqlite_from(), &[]);
    assert!(o.status.success(), "{}", text(&o));
    let own = src.join("stratusd-own.db");
    std::fs::rename(target.join("stratusd.db"), &own).unwrap();
    cases.push((own, "this is a stratusd database, not oned's"));

    for (path, message) in cases {
        let from = format!("sqlite:{}", path.display());
        for extra in [&[][..], &["--dry-run"][..]] {
            let o = import_into(&target, &from, extra);
            assert!(
                !o.status.success(),
                "{} was imported:\n{}",
                path.display(),
                text(&o)
            );
            assert!(
                text(&o).contains(message),
                "{}: expected {message:?} in\n{}",
                path.display(),
                text(&o)
            );
            assert!(
                entries(&target).is_empty(),
                "{} left {:?}",
                path.display(),
                entries(&target)
            );
        }
    }
    let missing = import_into(&target, "sqlite:/nonexistent/one.db", &[]);
    assert!(
        !missing.status.success() && text(&missing).contains("/nonexistent/one.db does not exist"),
        "{}",
        text(&missing)
    );
    let bad_url = import_into(&target, "postgres://x@y/z", &[]);
    assert!(
        !bad_url.status.success() && text(&bad_url).contains("use sqlite:PATH or mysql://"),
        "{}",
        text(&bad_url)
    );
    assert!(entries(&target).is_empty());
    let _ = std::fs::remove_dir_all(&src);
    let _ = std::fs::remove_dir_all(&target);
}

#[test]
fn mysql_import_and_export_against_a_real_mariadb() {
    let db = common::mariadb::MariaDb::start("migrate");
    db.load_dump("opennebula", &fixture("mysql/opennebula.sql"));

    // Import: every answer as oned gave it on MySQL.
    let dir = temp_dir("migrate-mysql");
    let from = db.url("opennebula");
    let dry = import_into(&dir, &from, &["--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry));
    let out = String::from_utf8_lossy(&dry.stdout).to_string();
    assert!(
        out.contains(&format!(
            "database mysql://oneadmin@127.0.0.1:{}/opennebula",
            db.port
        )),
        "{out}"
    );
    assert!(
        !text(&dry).contains("oneadmin:oneadmin"),
        "the password was shown: {}",
        text(&dry)
    );
    assert!(out.contains("warnings: none"), "{out}");
    let o = import_into(&dir, &from, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let mut d = start_imported(&dir);
    let mut c = d.client();
    let want = expected("mysql");
    let (compared, differences) = compare_with_oned(&mut c, &want);
    assert!(compared > 40);
    assert!(
        differences.is_empty(),
        "{} of {compared}:\n{}",
        differences.len(),
        differences.join("\n")
    );
    check_next_ids_and_leases(&mut c);
    assert_eq!(d.stop(), Some(0));

    // A wrong password or database is refused with MySQL's reason, and nothing is written.
    let bad = temp_dir("migrate-mysql-bad");
    let wrong = format!("mysql://oneadmin:wrong@127.0.0.1:{}/opennebula", db.port);
    let o = import_into(&bad, &wrong, &[]);
    assert!(
        !o.status.success() && text(&o).contains("Access denied"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains(":wrong@"), "{}", text(&o));
    let o = import_into(&bad, &db.url("nosuchdb"), &[]);
    assert!(
        !o.status.success() && text(&o).contains("nosuchdb"),
        "{}",
        text(&o)
    );
    db.sql("", "CREATE DATABASE empty");
    let o = import_into(&bad, &db.url("empty"), &[]);
    assert!(
        !o.status.success() && text(&o).contains("not an OpenNebula database"),
        "{}",
        text(&o)
    );
    assert!(entries(&bad).is_empty(), "{:?}", entries(&bad));

    // Export of the MySQL-imported site into a new database: oned's rows, table by table.
    let fresh = temp_dir("migrate-mysql-export");
    let o = import_into(&fresh, &from, &[]);
    assert!(o.status.success(), "{}", text(&o));
    db.sql("", "CREATE DATABASE exported");
    let to = db.url("exported");
    let f = fresh.to_str().unwrap();
    let e = stratusd(&["export", "--data-dir", f, "--to", &to]);
    assert!(e.status.success(), "{}", text(&e));
    for table in ONED_TABLES.iter().chain(["quotas"].iter()) {
        assert_eq!(
            db.rows("exported", table),
            db.rows("opennebula", table),
            "table {table}"
        );
    }
    assert_eq!(
        db.sql("exported", "SELECT version FROM db_versioning"),
        db.sql("opennebula", "SELECT version FROM db_versioning")
    );
    let leftovers = db.sql("exported", "SHOW TABLES LIKE '%stratusd%'");
    assert!(leftovers.is_empty(), "{leftovers}");
    // Exporting over existing oned tables needs --force; with it the tables are swapped.
    let again = stratusd(&["export", "--data-dir", f, "--to", &to]);
    assert!(
        !again.status.success() && text(&again).contains("--force"),
        "{}",
        text(&again)
    );
    db.sql("exported", "DELETE FROM vm_pool WHERE oid = 13");
    let forced = stratusd(&["export", "--data-dir", f, "--to", &to, "--force"]);
    assert!(forced.status.success(), "{}", text(&forced));
    assert_eq!(
        db.rows("exported", "vm_pool"),
        db.rows("opennebula", "vm_pool")
    );

    // import → export → import gives the same answers.
    let back = temp_dir("migrate-mysql-back");
    let o = import_into(&back, &to, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let mut d = start_imported(&back);
    let mut c = d.client();
    let (_, differences) = compare_with_oned(&mut c, &want);
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    assert_eq!(d.stop(), Some(0));
    for p in [dir, bad, fresh, back] {
        let _ = std::fs::remove_dir_all(p);
    }
}

#[test]
fn users_own_quota_limits_come_along() {
    let dir = temp_dir("migrate-quota");
    // alice (2) got her own limits with `onequota set`; the others keep the site's.
    let quota_db = dir.join("onequota.db");
    std::fs::copy(fixture("sqlite/onequota.db"), &quota_db).unwrap();
    rusqlite::Connection::open(&quota_db)
        .unwrap()
        .execute_batch("INSERT INTO quotas (UID, CPU, MEMORY, NUM_VMS, STORAGE) VALUES (2, 1.0, NULL, 5, NULL)")
        .unwrap();
    let data = dir.join("data");
    let o = import_into(
        &data,
        &sqlite_from(),
        &["--quota-db", quota_db.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("quotas              1"),
        "{}",
        text(&o)
    );
    let mut d = start_imported(&data);
    let mut c = d.client();
    let alice = c.call(
        "one.vm.allocate",
        &[s("alice:alicepw"), s("NAME=more\nCPU=1\nMEMORY=64")],
    );
    assert_eq!(
        rpc_result(&alice),
        Err((
            "[VirtualMachineAllocate] User [2] : CPU quota exceeded (Quota: 1.0, Used: 1.1, Requested: 1.0).".to_string(),
            512
        ))
    );
    // dave has no row: the site's limits (CPU 20) let him.
    let dave = c.call(
        "one.vm.allocate",
        &[s("dave:davepw"), s("NAME=more\nCPU=1\nMEMORY=64")],
    );
    assert_eq!(rpc_result(&dave), Ok("14".to_string()));
    assert_eq!(d.stop(), Some(0));
    // The limits go back with an export.
    let back = dir.join("back.db");
    let back_quota = dir.join("back-quota.db");
    let e = stratusd(&[
        "export",
        "--data-dir",
        data.to_str().unwrap(),
        "--to",
        &format!("sqlite:{}", back.display()),
        "--quota-db",
        back_quota.to_str().unwrap(),
    ]);
    assert!(e.status.success(), "{}", text(&e));
    assert_eq!(
        sqlite_rows(&back_quota, "quotas"),
        vec![vec!["2", "1.0", "NULL", "5", "NULL"]]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn another_data_directory_gets_rewritten_paths_and_copied_files() {
    let dir = temp_dir("migrate-relocate");
    let old = dir.join("var-lib-one");
    let old_s = old.to_str().unwrap().to_string();
    let src = altered_copy(
        &dir,
        "one.db",
        &["vm_pool", "history", "image_pool"]
            .iter()
            .map(|t| format!("UPDATE {t} SET body = replace(body, '/var/lib/one', '{old_s}');"))
            .collect::<String>(),
    );
    let from = format!("sqlite:{}", src.display());
    // oned's var directory: the two image files and the directories of a few VMs.
    let images = [
        "aea30ef6d300099260cf158cb0126a39",
        "d802bb329fde788f35ea82abe83f8a8a",
    ];
    for (n, img) in images.iter().enumerate() {
        std::fs::create_dir_all(old.join("images")).unwrap();
        std::fs::write(old.join("images").join(img), format!("image {n}")).unwrap();
    }
    for vid in [0, 1, 7] {
        std::fs::create_dir_all(old.join(format!("{vid}/images"))).unwrap();
        std::fs::write(
            old.join(format!("{vid}/images/disk.0")),
            format!("disk of {vid}"),
        )
        .unwrap();
    }
    let new = dir.join("stratusd");
    let new_s = new.to_str().unwrap().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "import",
            "--from",
            &from,
            "--data-dir",
            &new_s,
            "--old-var-dir",
            &old_s,
        ];
        args.extend_from_slice(extra);
        stratusd(&args)
    };
    // A target file in the way: the import fails, and nothing it copied or wrote is left.
    std::fs::create_dir_all(new.join("images")).unwrap();
    std::fs::write(new.join("images").join(images[1]), "in the way").unwrap();
    let o = run(&["--copy-files"]);
    assert!(
        !o.status.success() && text(&o).contains("already exists"),
        "{}",
        text(&o)
    );
    assert_eq!(entries(&new), vec!["images".to_string()]);
    assert_eq!(entries(&new.join("images")), vec![images[1].to_string()]);
    std::fs::remove_dir_all(new.join("images")).unwrap();

    let o = run(&["--copy-files"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.contains("paths rewritten: "), "{out}");
    assert!(out.contains("files copied: 4"), "{out}");
    for (n, img) in images.iter().enumerate() {
        assert_eq!(
            std::fs::read_to_string(new.join("images").join(img)).unwrap(),
            format!("image {n}")
        );
        assert!(
            old.join("images").join(img).exists(),
            "the original was moved"
        );
    }
    // The live VMs' directories came along; the DONE VM 7's did not.
    for vid in [0, 1] {
        assert_eq!(
            std::fs::read_to_string(new.join(format!("{vid}/images/disk.0"))).unwrap(),
            format!("disk of {vid}")
        );
    }
    assert!(!new.join("7").exists());
    let mut d = start_imported(&new);
    let mut c = d.client();
    let vm = rpc_result(&c.call("one.vm.info", &[s(ADMIN), i(0)])).unwrap();
    assert!(vm.contains(&format!("<VM_DIR>{new_s}/</VM_DIR>")), "{vm}");
    assert!(
        vm.contains(&format!(
            "<SOURCE><![CDATA[{new_s}/images/{}]]></SOURCE>",
            images[0]
        )),
        "{vm}"
    );
    assert!(!vm.contains(&old_s), "{vm}");
    let img = rpc_result(&c.call("one.image.info", &[s(ADMIN), i(1)])).unwrap();
    assert!(
        img.contains(&format!("<SOURCE>{new_s}/images/{}</SOURCE>", images[1])),
        "{img}"
    );
    // Paths outside the old directory stay as they were.
    assert!(
        img.contains("<PATH>/srv/cloud/images/ttylinux.img</PATH>"),
        "{img}"
    );
    assert_eq!(d.stop(), Some(0));

    // Without --copy-files only the documents change.
    let other = dir.join("other");
    let other_s = other.to_str().unwrap();
    let o = stratusd(&[
        "import",
        "--from",
        &from,
        "--data-dir",
        other_s,
        "--old-var-dir",
        &old_s,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(entries(&other), vec!["stratusd.db".to_string()]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Replaces the text of the first `<TAG>…</TAG>` (or `<TAG><![CDATA[…]]></TAG>`) of `body`.
fn set(body: &str, tag: &str, value: &str) -> String {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let start = body
        .find(&open)
        .unwrap_or_else(|| panic!("no {tag} in {body}"))
        + open.len();
    let end = start + body[start..].find(&close).unwrap();
    let old = &body[start..end];
    let new = if old.starts_with("<![CDATA[") {
        format!("<![CDATA[{value}]]>")
    } else {
        value.to_string()
    };
    format!("{}{new}{}", &body[..start], &body[end..])
}

/// Replaces every `<TAG>…</TAG>` inside `<OUTER>…</OUTER>`.
fn set_in(body: &str, outer: &str, tag: &str, value: &str) -> String {
    let (open, close) = (format!("<{outer}>"), format!("</{outer}>"));
    let start = body.find(&open).unwrap();
    let end = start + body[start..].find(&close).unwrap() + close.len();
    format!(
        "{}{}{}",
        &body[..start],
        set(&body[start..end], tag, value),
        &body[end..]
    )
}

pub struct Scale {
    pub vms: i64,
    pub hosts: i64,
    pub users: i64,
    pub history: i64,
}

/// A synthetic oned 3.2 database made from the fixture's rows: `vms` VMs (60 % RUNNING with 1–3
/// history records, 20 % DONE, 10 % PENDING, 10 % FAILED) on `hosts` hosts, owned by `users`
/// users, with their leases, image counters and host shares consistent.
pub fn build_scale_db(path: &Path, vms: i64, hosts: i64, users: i64) -> Scale {
    std::fs::copy(fixture("sqlite/one.db"), path).unwrap();
    let mut conn = rusqlite::Connection::open(path).unwrap();
    let body = |table: &str, oid: i64| -> String {
        conn.query_row(
            &format!("SELECT body FROM {table} WHERE oid = {oid}"),
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let user_body = body("user_pool", 2);
    let host_body = body("host_pool", 0);
    let vm_body = body("vm_pool", 0);
    let net_body = body("network_pool", 0);
    let history_body: String = conn
        .query_row("SELECT body FROM history WHERE vid = 0", [], |r| r.get(0))
        .unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute_batch(
        "DELETE FROM vm_pool; DELETE FROM history; DELETE FROM host_pool; DELETE FROM leases WHERE oid = 0;
         UPDATE leases SET body = replace(replace(body, '<USED>1</USED><VID>3</VID>', '<USED>0</USED><VID>-1</VID>'), '<USED>1</USED><VID>4</VID>', '<USED>0</USED><VID>-1</VID>') WHERE oid = 1;
         UPDATE network_pool SET body = replace(body, '<TOTAL_LEASES>3</TOTAL_LEASES>', '<TOTAL_LEASES>1</TOTAL_LEASES>') WHERE oid = 1;",
    )
    .unwrap();
    let groups = [(1, "users"), (100, "physics"), (101, "chemistry")];
    for uid in 8..users {
        let (gid, gname) = groups[(uid % 3) as usize];
        let mut b = set(&user_body, "ID", &uid.to_string());
        b = set(&b, "GID", &gid.to_string());
        b = set(&b, "GNAME", gname);
        b = set(&b, "NAME", &format!("user{uid:03}"));
        b = set(&b, "EMAIL", &format!("user{uid:03}@example.org"));
        tx.execute(
            "INSERT INTO user_pool VALUES (?1, ?2, ?3, ?1, ?4, 1, 0, 0)",
            rusqlite::params![uid, format!("user{uid:03}"), b, gid],
        )
        .unwrap();
    }
    let user_of = |vid: i64| -> (i64, i64, String, String) {
        let uid = 8 + vid % (users - 8);
        let (gid, gname) = groups[(uid % 3) as usize];
        (uid, gid, format!("user{uid:03}"), gname.to_string())
    };
    let mut share: Vec<(i64, i64, i64)> = vec![(0, 0, 0); hosts as usize];
    let mut live = 0;
    let mut history_rows = 0;
    let mut leases = 0;
    for vid in 0..vms {
        let (state, lcm) = match vid % 10 {
            0..=5 => (3, 3),
            6 | 7 => (6, 0),
            8 => (1, 0),
            _ => (7, 0),
        };
        let (uid, gid, uname, gname) = user_of(vid);
        let ip = 0x0a01_0001u32 + vid as u32;
        let ip_text = std::net::Ipv4Addr::from(ip).to_string();
        let o = ip.to_be_bytes();
        let mac = format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]);
        let mut b = set(&vm_body, "ID", &vid.to_string());
        for (tag, v) in [
            ("UID", uid.to_string()),
            ("GID", gid.to_string()),
            ("UNAME", uname),
            ("GNAME", gname),
            ("NAME", format!("vm-{vid}")),
            ("STATE", state.to_string()),
            ("LCM_STATE", lcm.to_string()),
            ("VMID", vid.to_string()),
            ("HOSTNAME", format!("vm-{vid}")),
            ("IP_PUBLIC", ip_text.clone()),
            ("PORT", (5000 + vid).to_string()),
        ] {
            b = set(&b, tag, &v);
        }
        b = set_in(&b, "NIC", "IP", &ip_text);
        b = set_in(&b, "NIC", "MAC", &mac);
        b = set_in(&b, "TEMPLATE", "NAME", &format!("vm-{vid}"));
        let records = match state {
            1 => 0,
            3 => 1 + vid % 3,
            _ => 1,
        };
        let host = vid % hosts;
        let mut last = String::new();
        for seq in 0..records {
            // Earlier records: the VM was migrated away from the host before.
            let hid = (host + hosts - (records - 1 - seq)) % hosts;
            let ended = seq + 1 < records || state != 3;
            let mut h = set(&history_body, "SEQ", &seq.to_string());
            h = set(&h, "HOSTNAME", &format!("node-{hid:04}"));
            h = set(&h, "HID", &hid.to_string());
            let t = 1_796_590_828 + seq * 60;
            h = set(&h, "STIME", &t.to_string());
            if ended {
                h = set(&h, "ETIME", &(t + 60).to_string());
                h = set(&h, "RETIME", &(t + 60).to_string());
                h = set(&h, "REASON", if state == 7 { "1" } else { "3" });
            }
            tx.execute(
                "INSERT INTO history VALUES (?1, ?2, ?3)",
                rusqlite::params![vid, seq, h],
            )
            .unwrap();
            history_rows += 1;
            last = h;
        }
        if records == 0 {
            let start = b.find("<HISTORY_RECORDS>").unwrap();
            b = format!("{}<HISTORY_RECORDS/></VM>", &b[..start]);
            b = set(&b, "DEPLOY_ID", "");
        } else {
            let start = b.find("<HISTORY_RECORDS>").unwrap();
            b = format!(
                "{}<HISTORY_RECORDS>{last}</HISTORY_RECORDS></VM>",
                &b[..start]
            );
        }
        if state == 6 || state == 7 {
            b = set(&b, "ETIME", "1796591000");
        }
        if state == 3 {
            let s = &mut share[host as usize];
            s.0 += 1;
            s.1 += 50;
            s.2 += 256 * 1024;
        }
        if state != 6 {
            live += 1;
            leases += 1;
            let lease = format!(
                "<LEASE><IP>{ip}</IP><MAC_PREFIX>512</MAC_PREFIX><MAC_SUFFIX>{ip}</MAC_SUFFIX><USED>1</USED><VID>{vid}</VID></LEASE>"
            );
            tx.execute(
                "INSERT INTO leases VALUES (0, ?1, ?2)",
                rusqlite::params![ip, lease],
            )
            .unwrap();
        }
        tx.execute(
            "INSERT INTO vm_pool VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, 0, 0)",
            rusqlite::params![
                vid,
                format!("vm-{vid}"),
                b,
                uid,
                gid,
                1_796_590_828i64,
                state,
                lcm
            ],
        )
        .unwrap();
    }
    for (hid, (n, cpu, mem)) in share.iter().enumerate() {
        let name = format!("node-{hid:04}");
        let mut b = set(&host_body, "ID", &hid.to_string());
        b = set(&b, "NAME", &name);
        b = set_in(&b, "TEMPLATE", "HOSTNAME", &name);
        b = set(&b, "RUNNING_VMS", &n.to_string());
        b = set(&b, "CPU_USAGE", &cpu.to_string());
        b = set(&b, "MEM_USAGE", &mem.to_string());
        tx.execute(
            "INSERT INTO host_pool VALUES (?1, ?2, ?3, 2, 1796590822, 0, 0, 1, 0, 0)",
            rusqlite::params![hid as i64, name, b],
        )
        .unwrap();
    }
    // The 10.1.0.250 lease stays held by oneadmin; the range grows to hold every VM.
    let held = 0x0a01_00fau32;
    if held >= 0x0a01_0001 + vms as u32 {
        leases += 1;
        tx.execute(
            "INSERT INTO leases VALUES (0, ?1, ?2)",
            rusqlite::params![held, format!("<LEASE><IP>{held}</IP><MAC_PREFIX>512</MAC_PREFIX><MAC_SUFFIX>{held}</MAC_SUFFIX><USED>1</USED><VID>-1</VID></LEASE>")],
        )
        .unwrap();
    }
    let mut net = set(&net_body, "IP_END", "10.1.255.254");
    net = set(&net, "TOTAL_LEASES", &leases.to_string());
    tx.execute("UPDATE network_pool SET body = ?1 WHERE oid = 0", [net])
        .unwrap();
    tx.execute_batch(&format!(
        "UPDATE image_pool SET body = replace(body, '<RUNNING_VMS>5</RUNNING_VMS>', '<RUNNING_VMS>{live}</RUNNING_VMS>') WHERE oid = 0;
         UPDATE image_pool SET body = replace(replace(body, '<RUNNING_VMS>1</RUNNING_VMS>', '<RUNNING_VMS>0</RUNNING_VMS>'), '<STATE>2</STATE>', '<STATE>1</STATE>') WHERE oid = 1;
         UPDATE pool_control SET last_oid = {} WHERE tablename = 'vm_pool';
         UPDATE pool_control SET last_oid = {} WHERE tablename = 'host_pool';
         UPDATE pool_control SET last_oid = {} WHERE tablename = 'user_pool';",
        vms - 1,
        hosts - 1,
        users - 1
    ))
    .unwrap();
    // Group member lists as oned keeps them.
    for (gid, _) in [(0, ""), (1, ""), (100, ""), (101, "")] {
        let members: Vec<i64> = {
            let mut stmt = tx
                .prepare("SELECT oid FROM user_pool WHERE gid = ?1 ORDER BY oid")
                .unwrap();
            stmt.query_map([gid], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let ids: String = members.iter().map(|m| format!("<ID>{m}</ID>")).collect();
        let b: String = tx
            .query_row("SELECT body FROM group_pool WHERE oid = ?1", [gid], |r| {
                r.get(0)
            })
            .unwrap();
        let start = b.find("<USERS>").unwrap();
        let b = format!("{}<USERS>{ids}</USERS></GROUP>", &b[..start]);
        tx.execute(
            "UPDATE group_pool SET body = ?1 WHERE oid = ?2",
            rusqlite::params![b, gid],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    Scale {
        vms,
        hosts,
        users,
        history: history_rows,
    }
}

/// `<ROOT>` + every body of `table` in id order + `</ROOT>`: how oned lists a pool.
fn pool_of_bodies(db: &Path, table: &str, root: &str) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(&format!("SELECT body FROM {table} ORDER BY oid"))
        .unwrap();
    let bodies: String = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    format!("<{root}>{bodies}</{root}>")
}

#[test]
fn ten_thousand_vms_thousand_hosts_five_hundred_users() {
    let dir = temp_dir("migrate-scale");
    let db = dir.join("one.db");
    let scale = build_scale_db(&db, 10_000, 1_000, 500);
    // For timing a release build by hand (docs/migration.md, "Measured").
    if let Some(keep) = std::env::var_os("STRATUSD_KEEP_SCALE_DB") {
        std::fs::copy(&db, keep).unwrap();
    }
    let from = format!("sqlite:{}", db.display());
    let data = dir.join("data");
    let started = std::time::Instant::now();
    let o = import_into(&data, &from, &[]);
    let elapsed = started.elapsed();
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    for line in [
        "users             500      500".to_string(),
        "hosts            1000     1000".to_string(),
        "vms             10000    10000".to_string(),
        format!("history      {:>8}", scale.history),
        "warnings: none".to_string(),
    ] {
        assert!(out.contains(&line), "{line:?} missing in\n{out}");
    }
    eprintln!(
        "scale: imported {} VMs ({} history records), {} hosts, {} users in {elapsed:?} (debug build, command included)",
        scale.vms, scale.history, scale.hosts, scale.users
    );
    let mut d = Daemon::start_within(
        data.clone(),
        IMPORTED_AT_REST,
        std::time::Duration::from_secs(600),
    );
    // At start-up the simulated hosts, which have no record of their domains after an import,
    // get their 6,000 running domains back before the daemon serves.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while !read_file(&data.join("daemon.log")).contains("stratusd ready") {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon never got ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let mut c = d.client();
    for (method, params, table, root) in [
        (
            "one.vmpool.info",
            vec![i(-2), i(-1), i(-1), i(-2)],
            "vm_pool",
            "VM_POOL",
        ),
        ("one.hostpool.info", vec![], "host_pool", "HOST_POOL"),
        ("one.userpool.info", vec![], "user_pool", "USER_POOL"),
        ("one.grouppool.info", vec![], "group_pool", "GROUP_POOL"),
    ] {
        let mut all = vec![s(ADMIN)];
        all.extend(params);
        let got = rpc_result(&c.call(method, &all)).unwrap();
        let want = pool_of_bodies(&db, table, root);
        assert!(got == want, "{method}: {}", first_difference(&want, &got));
    }
    // one.vm.info shows every history record.
    for vid in [0, 1, 2, 3, 4, 5, 8, 9, 9_998, 9_999] {
        let got = rpc_result(&c.call("one.vm.info", &[s(ADMIN), i(vid)])).unwrap();
        let conn = rusqlite::Connection::open(&db).unwrap();
        let body: String = conn
            .query_row("SELECT body FROM vm_pool WHERE oid = ?1", [vid], |r| {
                r.get(0)
            })
            .unwrap();
        let mut stmt = conn
            .prepare("SELECT body FROM history WHERE vid = ?1 ORDER BY seq")
            .unwrap();
        let records: String = stmt
            .query_map([vid], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let want = match body.find("<HISTORY_RECORDS>") {
            Some(at) => format!(
                "{}<HISTORY_RECORDS>{records}</HISTORY_RECORDS></VM>",
                &body[..at]
            ),
            None => body,
        };
        assert!(got == want, "vm {vid}: {}", first_difference(&want, &got));
    }
    assert_eq!(
        rpc_result(&c.call("one.vm.allocate", &[s(ADMIN), s("CPU=0.1\nMEMORY=32")])),
        Ok("10000".to_string())
    );
    d.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kill_9_during_an_import_leaves_no_database() {
    let dir = temp_dir("migrate-kill");
    let db = dir.join("one.db");
    build_scale_db(&db, 1_000, 100, 50);
    let from = format!("sqlite:{}", db.display());
    // How long a whole import takes here, to kill inside it.
    let probe = dir.join("probe");
    let started = std::time::Instant::now();
    let o = import_into(&probe, &from, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let whole = started.elapsed();
    let mut seed = whole.as_nanos() as u64 | 1;
    let mut killed_inside = 0;
    for attempt in 0..6 {
        let data = dir.join(format!("data{attempt}"));
        let d = data.to_str().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_stratusd"))
            .args([
                "import",
                "--from",
                &from,
                "--data-dir",
                d,
                "--old-var-dir",
                d,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // xorshift: kill moments spread over the whole import.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let at = whole.mul_f64((seed % 1000) as f64 / 1000.0);
        std::thread::sleep(at);
        let _ = child.kill();
        let status = child.wait().unwrap();
        let database = data.join("stratusd.db");
        if database.exists() {
            // Only a complete database is ever in place.
            let conn = rusqlite::Connection::open(&database).unwrap();
            let n: i64 = conn
                .query_row("SELECT COUNT(*) FROM vm_pool", [], |r| r.get(0))
                .unwrap();
            assert_eq!(
                n, 1_000,
                "attempt {attempt}: a partial database is in place"
            );
        } else {
            killed_inside += 1;
            assert!(!status.success());
            // The next import runs and clears what the killed one left.
            let o = import_into(&data, &from, &[]);
            assert!(o.status.success(), "{}", text(&o));
            assert_eq!(
                entries(&data),
                vec!["stratusd.db".to_string()],
                "attempt {attempt}"
            );
        }
    }
    assert!(killed_inside > 0, "no kill landed inside an import");
    let _ = std::fs::remove_dir_all(&dir);
}

fn vm_states(c: &mut Client, id: i32) -> (String, String) {
    let doc = rpc_result(&c.call("one.vm.info", &[s(ADMIN), i(id)])).unwrap();
    (
        field(&doc, "STATE").unwrap(),
        field(&doc, "LCM_STATE").unwrap(),
    )
}

fn wait_for(c: &mut Client, id: i32, want: (&str, &str)) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let got = vm_states(c, id);
        if (got.0.as_str(), got.1.as_str()) == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "VM {id} is {got:?}, not {want:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn imported_vms_go_on_with_their_life_cycle() {
    let dir = temp_dir("migrate-lifecycle");
    let o = import_into(&dir, &sqlite_from(), &[]);
    assert!(o.status.success(), "{}", text(&o));
    let mut d = Daemon::start_in(
        dir.clone(),
        &[
            "--vm-polling-interval",
            "1",
            "--host-monitoring-interval",
            "3600",
        ],
    );
    let mut c = d.client();
    let action = |c: &mut Client, a: &str, id: i32| {
        let r = rpc_result(&c.call("one.vm.action", &[s(ADMIN), s(a), i(id)]));
        assert!(r.is_ok(), "{a} {id}: {r:?}");
    };
    // The running VMs keep running through the first polls (their domains were adopted).
    std::thread::sleep(std::time::Duration::from_millis(2500));
    for id in [0, 1, 2, 3, 4, 8] {
        assert_eq!(vm_states(&mut c, id), ("3".into(), "3".into()), "VM {id}");
    }
    // Suspended under oned (whose dummy driver kept no checkpoint): resumes on its host.
    action(&mut c, "resume", 5);
    wait_for(&mut c, 5, ("3", "3"));
    // Stopped: back through the scheduler.
    action(&mut c, "resume", 6);
    wait_for(&mut c, 6, ("3", "3"));
    // Held, then released: PENDING (its requirements match no host, as under oned).
    action(&mut c, "release", 11);
    wait_for(&mut c, 11, ("1", "0"));
    // A live migration of a VM that was itself migrated under oned.
    let r = rpc_result(&c.call("one.vm.migrate", &[s(ADMIN), i(8), i(1), Param::B(true)]));
    assert!(r.is_ok(), "{r:?}");
    wait_for(&mut c, 8, ("3", "3"));
    let vm8 = rpc_result(&c.call("one.vm.info", &[s(ADMIN), i(8)])).unwrap();
    assert_eq!(elements(&vm8, "HISTORY").len(), 3, "{vm8}");
    // The FAILED VM gives back its lease and image when finalized.
    action(&mut c, "finalize", 13);
    wait_for(&mut c, 13, ("6", "0"));
    assert!(!vn_leases(&mut c, 0).iter().any(|l| l.ip == "10.1.0.9"));
    // A running VM shuts down and frees its lease.
    action(&mut c, "shutdown", 0);
    wait_for(&mut c, 0, ("6", "0"));
    assert!(!vn_leases(&mut c, 0).iter().any(|l| l.ip == "10.1.0.1"));
    let img = rpc_result(&c.call("one.image.info", &[s(ADMIN), i(0)])).unwrap();
    // 5 before; 13 and 0 gave theirs back; 11 took none (its template has no disk).
    assert_eq!(field(&img, "RUNNING_VMS").as_deref(), Some("3"), "{img}");
    assert_eq!(d.stop(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `UPDATE`s putting VM `id` (ACTIVE/RUNNING or another state in the fixture) into
/// `state`/`lcm`, in its row and its body.
fn set_vm_state(id: i32, state: i32, lcm: i32) -> String {
    format!(
        "UPDATE vm_pool SET state = {state}, lcm_state = {lcm},
           body = substr(body, 1, instr(body, '<STATE>') - 1) || '<STATE>{state}</STATE><LCM_STATE>{lcm}</LCM_STATE>' || substr(body, instr(body, '<STIME>'))
         WHERE oid = {id};"
    )
}

#[test]
fn vms_oned_left_in_a_transient_state_end_where_the_step_leads() {
    let dir = temp_dir("migrate-transient");
    let sql = [
        set_vm_state(0, 3, 2),  // BOOT
        set_vm_state(8, 3, 4),  // MIGRATE (node-02 → node-01)
        set_vm_state(2, 3, 12), // SHUTDOWN
        set_vm_state(3, 3, 6),  // SAVE_SUSPEND
        set_vm_state(4, 3, 13), // CANCEL
        set_vm_state(1, 3, 11), // EPILOG
        set_vm_state(5, 3, 5),  // SAVE_STOP (was SUSPENDED)
    ]
    .concat();
    let src = altered_copy(&dir, "one.db", &sql);
    let data = dir.join("data");
    let o = import_into(&data, &format!("sqlite:{}", src.display()), &[]);
    assert!(o.status.success(), "{}", text(&o));
    let mut d = Daemon::start_in(
        data.clone(),
        &[
            "--vm-polling-interval",
            "1",
            "--host-monitoring-interval",
            "3600",
        ],
    );
    let mut c = d.client();
    for (id, want) in [
        (0, ("3", "3")),
        (8, ("3", "3")),
        (2, ("6", "0")),
        (3, ("5", "0")),
        (4, ("6", "0")),
        (1, ("6", "0")),
        (5, ("4", "0")),
    ] {
        wait_for(&mut c, id, want);
    }
    // The migration had reached node-01: no new history record, placed there.
    let vm8 = rpc_result(&c.call("one.vm.info", &[s(ADMIN), i(8)])).unwrap();
    assert_eq!(elements(&vm8, "HISTORY").len(), 2, "{vm8}");
    assert!(vm8.ends_with("<HOSTNAME>node-01</HOSTNAME><VM_DIR>/var/lib/one/</VM_DIR><HID>0</HID><STIME>1796590868</STIME><ETIME>0</ETIME><VMMMAD>vmm_dummy</VMMMAD><VNMMAD>dummy</VNMMAD><TMMAD>tm_dummy</TMMAD><PSTIME>0</PSTIME><PETIME>0</PETIME><RSTIME>1796590868</RSTIME><RETIME>0</RETIME><ESTIME>0</ESTIME><EETIME>0</EETIME><REASON>0</REASON></HISTORY></HISTORY_RECORDS></VM>"), "{vm8}");
    // They keep running through the polls that follow.
    std::thread::sleep(std::time::Duration::from_millis(2000));
    for id in [0, 8] {
        assert_eq!(vm_states(&mut c, id), ("3".into(), "3".into()), "VM {id}");
    }
    assert_eq!(d.stop(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Domains already running on simulated host `hid`, as its domain records keep them across
/// daemons (`simulated-hosts/host-<hid>.domains/`, see `driver::hypervisor`): a node where
/// oned deployed them. (KVM hosts must use QEMU URIs, so a node of libvirt's test driver can
/// only be a simulated host.)
fn node_with_domains(data: &Path, hid: u32, domains: &[&str]) {
    let dir = data.join(format!("simulated-hosts/host-{hid}.domains"));
    std::fs::create_dir_all(&dir).unwrap();
    for n in domains {
        std::fs::write(
            dir.join(format!("{n}.xml")),
            format!("<domain xmlns:test='http://libvirt.org/schemas/domain/test/1.0' type='test'><name>{n}</name><memory>131072</memory><vcpu>1</vcpu><os><type>hvm</type></os><test:transient/>\n</domain>"),
        )
        .unwrap();
    }
}

#[test]
fn running_domains_on_libvirt_hosts_are_adopted_not_recreated() {
    let dir = temp_dir("migrate-adopt");
    let data = dir.join("data");
    let o = import_into(&data, &sqlite_from(), &[]);
    assert!(o.status.success(), "{}", text(&o));
    // node-02 (host 1): one-0 and one-2 run (VMs 0 and 2), one-4 vanished while nothing
    // watched, one-99 is not a VM of this site.
    node_with_domains(&data, 1, &["one-0", "one-2", "one-99"]);
    let records = data.join("simulated-hosts/host-1.domains");
    let one_0 = std::fs::read(records.join("one-0.xml")).unwrap();
    let mut d = Daemon::start_in(
        data.clone(),
        &[
            "--vm-polling-interval",
            "1",
            "--host-monitoring-interval",
            "3600",
        ],
    );
    let mut c = d.client();
    // After the first polls: 0 and 2 still RUNNING on their domains, 4 UNKNOWN (as oned
    // reported a VM whose domain was gone).
    wait_for(&mut c, 4, ("3", "16"));
    for id in [0, 2] {
        assert_eq!(vm_states(&mut c, id), ("3".into(), "3".into()), "VM {id}");
    }
    let log = read_file(&data.join("daemon.log"));
    assert!(log.contains("destroying orphan domain one-99"), "{log}");
    // The node runs exactly the adopted domains, one-0 as it was.
    assert_eq!(entries(&records), vec!["one-0.xml", "one-2.xml"]);
    assert_eq!(std::fs::read(records.join("one-0.xml")).unwrap(), one_0);
    for vid in [0, 2] {
        assert!(
            !log.contains(&format!("domain=one-{vid} ")),
            "one-{vid} was touched:\n{log}"
        );
        assert!(
            !log.contains(&format!("orphan domain one-{vid}\n")),
            "{log}"
        );
    }
    // The adopted domain obeys: a shutdown ends the VM.
    let r = rpc_result(&c.call("one.vm.action", &[s(ADMIN), s("shutdown"), i(2)]));
    assert!(r.is_ok(), "{r:?}");
    wait_for(&mut c, 2, ("6", "0"));
    assert_eq!(d.stop(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}
