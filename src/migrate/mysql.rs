//! oned on MySQL (StratusLab's installer created the `opennebula` database for user
//! `oneadmin`, with the quota driver's tables in the same database): read for an import,
//! written for an export.

use super::tables::{OnedTables, Value, MYSQL_QUOTA_TABLES, ONED_TABLES, QUOTA_COLUMNS};
use super::MigrateError;
use mysql::prelude::Queryable;
use mysql::{Conn, Opts, TxOpts};

/// `mysql://USER:PASSWORD@HOST[:PORT]/DATABASE[?socket=PATH]`, kept apart from how it is shown
/// (never with the password).
#[derive(Clone, PartialEq, Eq)]
pub struct MysqlUrl {
    url: String,
    shown: String,
}

impl std::fmt::Debug for MysqlUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl MysqlUrl {
    pub fn parse(text: &str) -> Result<MysqlUrl, MigrateError> {
        let opts = Opts::from_url(text).map_err(|e| {
            MigrateError::Usage(format!(
                "bad MySQL URL (mysql://USER:PASSWORD@HOST[:PORT]/DATABASE): {e}"
            ))
        })?;
        let db = opts.get_db_name().ok_or_else(|| {
            MigrateError::Usage("the MySQL URL names no database (…/DATABASE)".into())
        })?;
        let shown = format!(
            "mysql://{}@{}:{}/{db}",
            opts.get_user().unwrap_or(""),
            opts.get_ip_or_hostname(),
            opts.get_tcp_port()
        );
        Ok(MysqlUrl {
            url: text.to_string(),
            shown,
        })
    }

    pub fn describe(&self) -> String {
        self.shown.clone()
    }

    fn connect(&self) -> Result<Conn, MigrateError> {
        let opts = Opts::from_url(&self.url)
            .map_err(|e| MigrateError::Usage(format!("bad MySQL URL: {e}")))?;
        Conn::new(opts).map_err(|e| self.error(e))
    }

    fn error(&self, e: mysql::Error) -> MigrateError {
        MigrateError::Database(format!("{}: {e}", self.shown))
    }
}

fn value(v: mysql::Value) -> Value {
    match v {
        mysql::Value::NULL => Value::Null,
        mysql::Value::Bytes(b) => Value::Text(String::from_utf8_lossy(&b).into_owned()),
        mysql::Value::Int(n) => Value::Int(n),
        mysql::Value::UInt(n) => i64::try_from(n)
            .map(Value::Int)
            .unwrap_or(Value::Real(n as f64)),
        mysql::Value::Float(f) => Value::Real(f.into()),
        mysql::Value::Double(f) => Value::Real(f),
        other => Value::Text(other.as_sql(true)),
    }
}

fn param(v: &Value) -> mysql::Value {
    match v {
        Value::Null => mysql::Value::NULL,
        Value::Int(n) => mysql::Value::Int(*n),
        Value::Real(f) => mysql::Value::Double(*f),
        Value::Text(t) => mysql::Value::Bytes(t.as_bytes().to_vec()),
    }
}

fn select<Q: Queryable>(
    conn: &mut Q,
    url: &MysqlUrl,
    sql: &str,
) -> Result<Vec<Vec<Value>>, MigrateError> {
    let rows: Vec<mysql::Row> = conn.query(sql).map_err(|e| url.error(e))?;
    Ok(rows
        .into_iter()
        .map(|r| r.unwrap().into_iter().map(value).collect())
        .collect())
}

fn table_names<Q: Queryable>(conn: &mut Q, url: &MysqlUrl) -> Result<Vec<String>, MigrateError> {
    Ok(select(conn, url, "SHOW TABLES")?
        .into_iter()
        .filter_map(|r| {
            r.into_iter()
                .next()
                .and_then(|v| v.as_text().map(str::to_string))
        })
        .collect())
}

/// Reads oned's tables and the quota tables in one consistent snapshot.
/// `check` is called once `db_versioning` is read, before the other tables are.
pub fn read(
    url: &MysqlUrl,
    check: &super::VersionCheck,
) -> Result<(Vec<String>, OnedTables), MigrateError> {
    let mut conn = url.connect()?;
    let names = table_names(&mut conn, url)?;
    let mut tables = OnedTables::default();
    let mut tx = conn
        .start_transaction(
            TxOpts::default()
                .set_with_consistent_snapshot(true)
                .set_access_mode(Some(mysql::AccessMode::ReadOnly)),
        )
        .map_err(|e| url.error(e))?;
    if !names.iter().any(|n| n == "db_versioning") {
        check(&names, &tables)?;
    }
    for def in super::tables::read_order() {
        if names.iter().any(|n| n == def.name) {
            let sql = format!(
                "SELECT {} FROM `{}`",
                def.columns
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                def.name
            );
            tables
                .rows
                .insert(def.name.to_string(), select(&mut tx, url, &sql)?);
            if def.name == "db_versioning" {
                check(&names, &tables)?;
            }
        }
    }
    for table in ["quotas", "usage"] {
        if names.iter().any(|n| n == table) {
            let sql = format!(
                "SELECT {} FROM `{table}` ORDER BY `UID`",
                QUOTA_COLUMNS
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            tables
                .rows
                .insert(table.to_string(), select(&mut tx, url, &sql)?);
        }
    }
    tx.commit().map_err(|e| url.error(e))?;
    Ok((names, tables))
}

const STAGING: &str = "__stratusd_new";
const RETIRED: &str = "__stratusd_old";

/// Every table an export writes, with its statements for a given table name.
fn definitions() -> Vec<(&'static str, Vec<String>, &'static [&'static str])> {
    let mut out: Vec<(&'static str, Vec<String>, &'static [&'static str])> = ONED_TABLES
        .iter()
        .map(|d| (d.name, vec![d.create.to_string()], d.columns))
        .collect();
    out.push((
        "quotas",
        MYSQL_QUOTA_TABLES[..2]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        QUOTA_COLUMNS,
    ));
    out.push((
        "usage",
        MYSQL_QUOTA_TABLES[2..]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        QUOTA_COLUMNS,
    ));
    out
}

/// The statements of `table` creating `new_name` instead.
fn renamed(statements: &[String], table: &str, new_name: &str) -> Vec<String> {
    statements
        .iter()
        .map(|s| {
            s.replacen(&format!("`{table}`"), &format!("`{new_name}`"), 1)
                .replacen(
                    &format!("TABLE {table} "),
                    &format!("TABLE `{new_name}` "),
                    1,
                )
        })
        .collect()
}

/// Writes the tables into the database: filled under staging names in one transaction, then
/// swapped in with one atomic `RENAME TABLE`, so oned sees either its old tables or the new
/// ones. Existing oned tables are replaced only with `force`.
pub fn write(url: &MysqlUrl, tables: &OnedTables, force: bool) -> Result<(), MigrateError> {
    let mut conn = url.connect()?;
    let names = table_names(&mut conn, url)?;
    let defs = definitions();
    let existing: Vec<&str> = defs
        .iter()
        .map(|(n, _, _)| *n)
        .filter(|n| names.iter().any(|e| e == n))
        .collect();
    if !existing.is_empty() && !force {
        return Err(MigrateError::Usage(format!(
            "{} already has oned tables ({}); pass --force to replace them",
            url.describe(),
            existing.join(", ")
        )));
    }
    let drop_all = |conn: &mut Conn, suffix: &str| {
        for (name, _, _) in &defs {
            let _ = conn.query_drop(format!("DROP TABLE IF EXISTS `{name}{suffix}`"));
        }
    };
    drop_all(&mut conn, STAGING);
    drop_all(&mut conn, RETIRED);
    let fill = |conn: &mut Conn| -> Result<(), MigrateError> {
        for (name, statements, _) in &defs {
            for s in renamed(statements, name, &format!("{name}{STAGING}")) {
                conn.query_drop(&s).map_err(|e| url.error(e))?;
            }
        }
        let mut tx = conn
            .start_transaction(TxOpts::default())
            .map_err(|e| url.error(e))?;
        for (name, _, columns) in &defs {
            let rows = tables.table(name);
            if rows.is_empty() {
                continue;
            }
            let sql = format!(
                "INSERT INTO `{name}{STAGING}` ({}) VALUES ({})",
                columns
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                vec!["?"; columns.len()].join(", ")
            );
            tx.exec_batch(
                &sql,
                rows.iter()
                    .map(|r| mysql::Params::Positional(r.iter().map(param).collect())),
            )
            .map_err(|e| url.error(e))?;
        }
        tx.commit().map_err(|e| url.error(e))?;
        Ok(())
    };
    if let Err(e) = fill(&mut conn) {
        drop_all(&mut conn, STAGING);
        return Err(e);
    }
    let mut renames: Vec<String> = Vec::new();
    for name in &existing {
        renames.push(format!("`{name}` TO `{name}{RETIRED}`"));
    }
    for (name, _, _) in &defs {
        renames.push(format!("`{name}{STAGING}` TO `{name}`"));
    }
    if let Err(e) = conn.query_drop(format!("RENAME TABLE {}", renames.join(", "))) {
        drop_all(&mut conn, STAGING);
        return Err(url.error(e));
    }
    drop_all(&mut conn, RETIRED);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_is_shown_without_its_password() {
        let u =
            MysqlUrl::parse("mysql://oneadmin:s%40cret@db.example.org:3307/opennebula").unwrap();
        assert_eq!(
            u.describe(),
            "mysql://oneadmin@db.example.org:3307/opennebula"
        );
        assert!(!format!("{u:?}").contains("cret"));
        assert!(MysqlUrl::parse("mysql://oneadmin:x@localhost").is_err());
    }

    #[test]
    fn staging_statements_name_the_staging_table() {
        let defs = definitions();
        let (name, statements, _) = defs.iter().find(|d| d.0 == "vm_pool").unwrap();
        let s = renamed(statements, name, "vm_pool__stratusd_new");
        assert!(
            s[0].starts_with("CREATE TABLE `vm_pool__stratusd_new` (oid INTEGER"),
            "{}",
            s[0]
        );
        let (name, statements, _) = defs.iter().find(|d| d.0 == "quotas").unwrap();
        let s = renamed(statements, name, "quotas__stratusd_new");
        assert!(
            s[0].starts_with("CREATE TABLE `quotas__stratusd_new` ("),
            "{}",
            s[0]
        );
        assert!(
            s[1].ends_with("ON `quotas__stratusd_new` (`UID`)"),
            "{}",
            s[1]
        );
    }
}
