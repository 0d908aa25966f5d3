//! oned's SQLite database (`one.db`, oned's default) and the quota driver's own file
//! (`onequota.db`): read for an import, written for an export.

use super::tables::{OnedTables, Value, ONED_TABLES, QUOTA_COLUMNS, SQLITE_QUOTA_TABLES};
use super::MigrateError;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};

fn sqlite_err(path: &Path) -> impl Fn(rusqlite::Error) -> MigrateError + '_ {
    move |e| {
        // SQLITE_NOTADB / SQLITE_CORRUPT are what a damaged or foreign file gives.
        let corrupt = matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::NotADatabase) | Some(rusqlite::ErrorCode::DatabaseCorrupt)
        );
        if corrupt {
            MigrateError::Corrupt(format!("{}: {e}", path.display()))
        } else {
            MigrateError::Database(format!("{}: {e}", path.display()))
        }
    }
}

fn value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Int(n),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            Value::Text(String::from_utf8_lossy(t).into_owned())
        }
    }
}

/// Opens an existing database read-only (an import never changes oned's files).
pub fn open_read_only(path: &Path) -> Result<Connection, MigrateError> {
    if !path.is_file() {
        return Err(MigrateError::Usage(format!(
            "{} does not exist",
            path.display()
        )));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_err(path))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sqlite_err(path))?;
    // A damaged file is refused before anything is read from it.
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(sqlite_err(path))?;
    if check != "ok" {
        return Err(MigrateError::Corrupt(format!(
            "{}: integrity check failed: {check}",
            path.display()
        )));
    }
    Ok(conn)
}

fn table_names(conn: &Connection, path: &Path) -> Result<Vec<String>, MigrateError> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .map_err(sqlite_err(path))?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(sqlite_err(path))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sqlite_err(path))?;
    Ok(names)
}

fn select(conn: &Connection, path: &Path, sql: &str) -> Result<Vec<Vec<Value>>, MigrateError> {
    let mut stmt = conn.prepare(sql).map_err(sqlite_err(path))?;
    let n = stmt.column_count();
    let mut rows = stmt.query([]).map_err(sqlite_err(path))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sqlite_err(path))? {
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            values.push(value(row.get_ref(i).map_err(sqlite_err(path))?));
        }
        out.push(values);
    }
    Ok(out)
}

/// Reads oned's tables from `one.db` (and the quota tables from `quota_db`, when given) in one
/// read transaction each, so a consistent snapshot is read even if something still writes.
/// `check` is called once `db_versioning` is read, before the other tables are.
pub fn read(
    one_db: &Path,
    quota_db: Option<&Path>,
    check: &super::VersionCheck,
) -> Result<(Vec<String>, OnedTables), MigrateError> {
    let mut conn = open_read_only(one_db)?;
    let names = table_names(&conn, one_db)?;
    let mut tables = OnedTables::default();
    {
        let tx = conn.transaction().map_err(sqlite_err(one_db))?;
        for def in super::tables::read_order() {
            if !names.iter().any(|n| n == def.name) {
                continue;
            }
            let sql = format!("SELECT {} FROM {}", def.columns.join(", "), def.name);
            let rows = select(&tx, one_db, &sql)?;
            tables.rows.insert(def.name.to_string(), rows);
            if def.name == "db_versioning" {
                check(&names, &tables)?;
            }
        }
        if !names.iter().any(|n| n == "db_versioning") {
            check(&names, &tables)?;
        }
        // A MySQL-style site may keep the quota tables in the same file.
        read_quota_tables(&tx, one_db, &names, &mut tables)?;
        tx.commit().map_err(sqlite_err(one_db))?;
    }
    if let Some(q) = quota_db {
        let mut qconn = open_read_only(q)?;
        let qnames = table_names(&qconn, q)?;
        if !qnames.iter().any(|n| n == "quotas") {
            return Err(MigrateError::Corrupt(format!(
                "{}: no `quotas` table: is this the quota driver's database?",
                q.display()
            )));
        }
        let tx = qconn.transaction().map_err(sqlite_err(q))?;
        read_quota_tables(&tx, q, &qnames, &mut tables)?;
        tx.commit().map_err(sqlite_err(q))?;
    }
    Ok((names, tables))
}

fn read_quota_tables(
    conn: &Connection,
    path: &Path,
    names: &[String],
    tables: &mut OnedTables,
) -> Result<(), MigrateError> {
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
                .insert(table.to_string(), select(conn, path, &sql)?);
        }
    }
    Ok(())
}

/// The `stratusd` schema marker: a stratusd store also has `db_versioning`, with this comment.
pub fn is_stratusd_store(path: &Path) -> bool {
    let Ok(conn) = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return false;
    };
    conn.query_row(
        "SELECT COUNT(*) FROM db_versioning WHERE comment LIKE 'stratusd%'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .is_ok_and(|n| n > 0)
}

/// Writes `tables` into a new SQLite file at `path` (and the quota tables into `quota_path`, or
/// into `path` itself when None) atomically: everything goes into a temporary file that is
/// renamed into place after its commit.
pub fn write(
    path: &Path,
    quota_path: Option<&Path>,
    tables: &OnedTables,
) -> Result<(), MigrateError> {
    let one = write_file(path, |conn| {
        for def in ONED_TABLES {
            conn.execute_batch(def.create).map_err(sqlite_err(path))?;
            insert(conn, path, def.name, def.columns, tables.table(def.name))?;
        }
        if quota_path.is_none() {
            quota_tables(conn, path, tables)?;
        }
        Ok(())
    })?;
    let quota = match quota_path {
        Some(q) => Some(write_file(q, |conn| quota_tables(conn, q, tables))?),
        None => None,
    };
    // Both complete: put them in place.
    one.persist(path)?;
    if let (Some(tmp), Some(q)) = (quota, quota_path) {
        tmp.persist(q)?;
    }
    Ok(())
}

fn quota_tables(conn: &Connection, path: &Path, tables: &OnedTables) -> Result<(), MigrateError> {
    for ddl in SQLITE_QUOTA_TABLES {
        conn.execute_batch(ddl).map_err(sqlite_err(path))?;
    }
    for table in ["quotas", "usage"] {
        insert(
            conn,
            path,
            &format!("`{table}`"),
            QUOTA_COLUMNS,
            tables.table(table),
        )?;
    }
    Ok(())
}

fn insert(
    conn: &Connection,
    path: &Path,
    table: &str,
    columns: &[&str],
    rows: &[Vec<Value>],
) -> Result<(), MigrateError> {
    if rows.is_empty() {
        return Ok(());
    }
    let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        columns
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", "),
        marks.join(", ")
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(sqlite_err(path))?;
    for row in rows {
        let params: Vec<rusqlite::types::Value> = row
            .iter()
            .map(|v| match v {
                Value::Null => rusqlite::types::Value::Null,
                Value::Int(n) => rusqlite::types::Value::Integer(*n),
                Value::Real(f) => rusqlite::types::Value::Real(*f),
                Value::Text(t) => rusqlite::types::Value::Text(t.clone()),
            })
            .collect();
        stmt.execute(rusqlite::params_from_iter(params))
            .map_err(sqlite_err(path))?;
    }
    Ok(())
}

/// A file being written next to its final place; removed unless persisted.
pub struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// A fresh temporary name next to `target` (`.<name>.partial-<pid>`).
    pub fn next_to(target: &Path) -> Result<TempFile, MigrateError> {
        let dir = parent_dir(target);
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "database".into());
        let path = dir.join(format!(".{name}.partial-{}", std::process::id()));
        remove_sqlite_files(&path);
        Ok(TempFile { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// fsyncs the file, renames it onto `target`, and fsyncs the directory.
    pub fn persist(self, target: &Path) -> Result<(), MigrateError> {
        let io = |source| MigrateError::Io {
            path: target.to_path_buf(),
            source,
        };
        std::fs::File::open(&self.path)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        std::fs::rename(&self.path, target).map_err(io)?;
        std::fs::File::open(parent_dir(target))
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        std::mem::forget(self);
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        remove_sqlite_files(&self.path);
    }
}

pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Removes a database file and the journal files SQLite may keep next to it.
pub fn remove_sqlite_files(path: &Path) {
    let _ = std::fs::remove_file(path);
    for suffix in ["-journal", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// Builds a database in a temporary file next to `target` in one transaction, with a rollback
/// journal (no WAL left behind), closed and ready to be renamed.
fn write_file(
    target: &Path,
    fill: impl FnOnce(&Connection) -> Result<(), MigrateError>,
) -> Result<TempFile, MigrateError> {
    let tmp = TempFile::next_to(target)?;
    let mut conn = Connection::open(tmp.path()).map_err(sqlite_err(target))?;
    conn.pragma_update(None, "journal_mode", "DELETE")
        .map_err(sqlite_err(target))?;
    let tx = conn.transaction().map_err(sqlite_err(target))?;
    fill(&tx)?;
    tx.commit().map_err(sqlite_err(target))?;
    conn.close().map_err(|(_, e)| sqlite_err(target)(e))?;
    Ok(tmp)
}
