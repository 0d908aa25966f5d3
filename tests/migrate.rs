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

/// The daemon on an imported data directory, with monitoring and polling not due for a long
/// time: nothing changes the documents while they are compared.
pub fn start_imported(dir: &Path) -> Daemon {
    Daemon::start_in(
        dir.to_path_buf(),
        &[
            "--host-monitoring-interval",
            "100000000",
            "--vm-polling-interval",
            "100000000",
        ],
    )
}

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

    let o = import_into(&dir, &sqlite_from(), &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("imported into"),
        "{}",
        text(&o)
    );
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
