//! Moving a site between oned 3.2 and stratusd: `stratusd import` reads every table of an
//! oned 3.2 database (SQLite or MySQL) into stratusd's store in one transaction; `stratusd
//! export` writes stratusd's pools back as an oned 3.2 database (docs/migration.md).
//!
//! Both directions go through the same intermediate form, oned's rows ([`tables`]): a backend
//! reads or writes rows, [`convert`] turns rows into model objects (parsing oned's XML bodies)
//! and [`export`] renders model objects into rows (the model's 3.2 documents are oned's bodies).

pub mod convert;
pub mod export;
pub mod mysql;
pub mod paths;
pub mod progress;
pub mod sqlite;
pub mod tables;
pub mod xml;

use crate::core::{store_op, Change};
use crate::model::Kind;
use crate::store::{Store, StoreOp};
use convert::Site;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tables::OnedTables;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{0}")]
    Usage(String),
    #[error("{0} already holds a stratusd database; stop stratusd and pass --force to replace it")]
    TargetExists(PathBuf),
    #[error("{0}")]
    Version(String),
    #[error("corrupt database: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Database(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing stratusd's database: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Core(#[from] crate::core::Error),
}

/// Where an oned database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnedLocation {
    /// `sqlite:PATH` (oned's `one.db`), with the quota driver's own file when it has one.
    Sqlite {
        path: PathBuf,
        quota_db: Option<PathBuf>,
    },
    /// `mysql://USER:PASSWORD@HOST[:PORT]/DATABASE` (quota tables in the same database).
    Mysql(mysql::MysqlUrl),
}

impl OnedLocation {
    /// Parses `sqlite:PATH` or `mysql://…`.
    pub fn parse(text: &str, quota_db: Option<PathBuf>) -> Result<OnedLocation, MigrateError> {
        if let Some(rest) = text.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(MigrateError::Usage("sqlite: needs a file path".into()));
            }
            return Ok(OnedLocation::Sqlite {
                path: PathBuf::from(path),
                quota_db,
            });
        }
        if text.starts_with("mysql://") {
            if quota_db.is_some() {
                return Err(MigrateError::Usage(
                    "--quota-db is for SQLite sites: a MySQL site keeps its quota tables in the same database".into(),
                ));
            }
            return Ok(OnedLocation::Mysql(mysql::MysqlUrl::parse(text)?));
        }
        Err(MigrateError::Usage(format!(
            "unknown database {text:?}: use sqlite:PATH or mysql://USER:PASSWORD@HOST[:PORT]/DATABASE"
        )))
    }

    /// How the location is shown (never with a password).
    pub fn describe(&self) -> String {
        match self {
            OnedLocation::Sqlite { path, quota_db } => match quota_db {
                Some(q) => format!("sqlite:{} (quotas: {})", path.display(), q.display()),
                None => format!("sqlite:{}", path.display()),
            },
            OnedLocation::Mysql(url) => url.describe(),
        }
    }
}

/// What `stratusd import` is asked to do.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub from: OnedLocation,
    pub data_dir: PathBuf,
    /// stratusd's database file (the daemon's `database_path`).
    pub database: PathBuf,
    pub force: bool,
    pub dry_run: bool,
    /// oned's var directory, whose paths are rewritten when `data_dir` is elsewhere.
    pub old_var_dir: PathBuf,
    pub copy_files: bool,
    /// MAC prefix of RANGED networks that have no lease to learn it from (oned.conf's).
    pub mac_prefix: u16,
    /// Where to keep the progress in the Prometheus text format (`--progress-file`).
    pub progress_file: Option<PathBuf>,
}

/// What an import found (and, unless a dry run, wrote).
#[derive(Debug)]
pub struct ImportReport {
    pub source: String,
    pub version: String,
    pub counts: Vec<(Kind, usize, i32)>,
    pub history_records: usize,
    pub leases: usize,
    pub quotas: usize,
    pub rewritten_paths: usize,
    pub copied_files: usize,
    pub warnings: Vec<String>,
    pub elapsed: std::time::Duration,
    pub written: Option<PathBuf>,
}

impl ImportReport {
    /// The summary printed by `stratusd import` (and `--dry-run`).
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(out, "OpenNebula {} database {}", self.version, self.source);
        let _ = writeln!(out, "{:<12} {:>8} {:>8}", "pool", "objects", "next id");
        for (kind, n, last) in &self.counts {
            let _ = writeln!(out, "{:<12} {:>8} {:>8}", pool_label(*kind), n, last + 1);
        }
        let _ = writeln!(out, "{:<12} {:>8}", "history", self.history_records);
        let _ = writeln!(out, "{:<12} {:>8}", "leases", self.leases);
        let _ = writeln!(out, "{:<12} {:>8}", "quotas", self.quotas);
        if self.rewritten_paths > 0 {
            let _ = writeln!(out, "paths rewritten: {}", self.rewritten_paths);
        }
        if self.copied_files > 0 {
            let _ = writeln!(out, "files copied: {}", self.copied_files);
        }
        if self.warnings.is_empty() {
            let _ = writeln!(out, "warnings: none");
        } else {
            let _ = writeln!(out, "warnings: {}", self.warnings.len());
            for w in &self.warnings {
                let _ = writeln!(out, "  warning: {w}");
            }
        }
        match &self.written {
            Some(path) => {
                let _ = writeln!(
                    out,
                    "imported into {} in {:.2} s",
                    path.display(),
                    self.elapsed.as_secs_f64()
                );
            }
            None => {
                let _ = writeln!(out, "dry run: nothing written");
            }
        }
        out
    }
}

fn pool_label(kind: Kind) -> &'static str {
    match kind {
        Kind::User => "users",
        Kind::Group => "groups",
        Kind::Acl => "acl rules",
        Kind::Host => "hosts",
        Kind::Net => "networks",
        Kind::Image => "images",
        Kind::Template => "templates",
        Kind::Vm => "vms",
    }
}

/// The order pools are listed in.
const POOLS: [Kind; 8] = [
    Kind::User,
    Kind::Group,
    Kind::Acl,
    Kind::Host,
    Kind::Net,
    Kind::Image,
    Kind::Template,
    Kind::Vm,
];

/// Tables every oned 3.2 database has.
const REQUIRED: &[&str] = &[
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
    "db_versioning",
];

/// Refuses anything but an oned 3.2 database, naming what it is instead.
pub fn check_version(names: &[String], tables: &OnedTables) -> Result<String, MigrateError> {
    let has = |t: &str| names.iter().any(|n| n == t);
    if !has("db_versioning") {
        if has("vm_pool") || has("user_pool") {
            return Err(MigrateError::Version(
                "this is an OpenNebula database older than 3.0 (it has no db_versioning table); \
                 upgrade it to 3.2 with OpenNebula 3.2's `onedb upgrade` first"
                    .into(),
            ));
        }
        return Err(MigrateError::Version(
            "this is not an OpenNebula database (no db_versioning table)".into(),
        ));
    }
    let rows = tables.table("db_versioning");
    let latest = rows
        .iter()
        .filter_map(|r| Some((r.first()?.as_i64()?, r)))
        .max_by_key(|(oid, _)| *oid)
        .map(|(_, r)| r);
    let Some(latest) = latest else {
        return Err(MigrateError::Corrupt(
            "db_versioning is empty: oned never finished its first start on this database".into(),
        ));
    };
    let version = latest
        .get(1)
        .and_then(|v| v.as_text())
        .unwrap_or("")
        .to_string();
    let comment = latest.get(3).and_then(|v| v.as_text()).unwrap_or("");
    if comment.starts_with("stratusd") {
        return Err(MigrateError::Version(
            "this is a stratusd database, not oned's: there is nothing to import".into(),
        ));
    }
    if version.starts_with("3.2.") || version == "3.2" {
        for t in REQUIRED {
            if !has(t) {
                return Err(MigrateError::Corrupt(format!(
                    "OpenNebula {version} database without its `{t}` table"
                )));
            }
        }
        return Ok(version);
    }
    let newer = version
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0))
        .collect::<Vec<_>>()
        > vec![3, 2];
    Err(MigrateError::Version(if newer {
        format!(
            "this is an OpenNebula {version} database; stratusd imports OpenNebula 3.2 databases only, \
             and OpenNebula has no downgrade to 3.2"
        )
    } else {
        format!(
            "this is an OpenNebula {version} database; stratusd imports OpenNebula 3.2 databases only: \
             upgrade it with OpenNebula 3.2's `onedb upgrade` first"
        )
    }))
}

/// Called by a backend once it has read the table names and `db_versioning`.
pub type VersionCheck = dyn Fn(&[String], &OnedTables) -> Result<(), MigrateError>;

/// Reads the oned database at `from`: the table names and every table's rows, once
/// [`check_version`] accepted it.
pub fn read_oned(from: &OnedLocation) -> Result<(Vec<String>, OnedTables), MigrateError> {
    let check = |names: &[String], tables: &OnedTables| check_version(names, tables).map(|_| ());
    match from {
        OnedLocation::Sqlite { path, quota_db } => sqlite::read(path, quota_db.as_deref(), &check),
        OnedLocation::Mysql(url) => mysql::read(url, &check),
    }
}

/// Reads and checks an oned 3.2 database into model objects, with the warnings it gave.
pub fn load_site(
    from: &OnedLocation,
    mac_prefix: u16,
) -> Result<(String, Site, Vec<String>), MigrateError> {
    let (names, tables) = read_oned(from)?;
    let version = check_version(&names, &tables)?;
    let mut warnings = Vec::new();
    let mut site = convert::site_from_tables(&tables, mac_prefix, &mut warnings)?;
    if tables.has("quotas") {
        site.quotas = convert::quotas_from_rows(tables.table("quotas"))?;
    } else if matches!(from, OnedLocation::Mysql(_)) {
        warnings
            .push("the database has no `quotas` table: users get the site's quota limits".into());
    }
    Ok((version, site, warnings))
}

/// The changes that recreate `site` in stratusd's store and the pool counters, by oned table
/// (the unit of the import's progress).
fn store_ops(site: &Site) -> Result<Vec<(&'static str, Vec<StoreOp>)>, MigrateError> {
    fn ops(changes: impl Iterator<Item = Change>) -> Result<Vec<StoreOp>, MigrateError> {
        changes.map(|c| Ok(store_op(&c)?)).collect()
    }
    let mut tables = vec![
        (
            "user_pool",
            ops(site.users.iter().cloned().map(Change::User))?,
        ),
        (
            "group_pool",
            ops(site.groups.iter().cloned().map(Change::Group))?,
        ),
        ("acl", ops(site.acls.iter().copied().map(Change::Acl))?),
        (
            "host_pool",
            ops(site.hosts.iter().cloned().map(Change::Host))?,
        ),
        (
            "network_pool",
            ops(site.vnets.iter().cloned().map(Change::VNet))?,
        ),
        (
            "image_pool",
            ops(site.images.iter().cloned().map(Change::Image))?,
        ),
        (
            "template_pool",
            ops(site.templates.iter().cloned().map(Change::Template))?,
        ),
        ("vm_pool", ops(site.vms.iter().cloned().map(Change::Vm))?),
    ];
    let counters = site
        .counters
        .iter()
        .filter(|(_, last)| **last >= 0)
        .map(|(kind, last)| StoreOp::Counter {
            kind: *kind,
            last_oid: *last,
        })
        .collect();
    tables.push(("pool_control", counters));
    let quotas = site
        .quotas
        .iter()
        .map(|q| {
            Ok(StoreOp::UserQuota {
                uid: q.uid,
                body: serde_json::to_string(q)
                    .map_err(|e| MigrateError::Database(format!("quota of user {}: {e}", q.uid)))?,
            })
        })
        .collect::<Result<Vec<_>, MigrateError>>()?;
    tables.push(("quotas", quotas));
    Ok(tables)
}

/// Rows written per commit: each table is written in commits of at most this many rows (all
/// into a temporary file that replaces the database only once complete and verified), so
/// that its progress can be shown.
const ROWS_PER_COMMIT: usize = 1000;

/// Reads a written store back and checks that every row deserialises into its model type and
/// every object is there (the daemon's start-up does the rest).
fn verify_store(store: &Store, site: &Site) -> Result<(), MigrateError> {
    fn check<T: serde::de::DeserializeOwned>(kind: Kind, body: &str) -> Result<(), MigrateError> {
        serde_json::from_str::<T>(body).map(|_| ()).map_err(|e| {
            MigrateError::Database(format!("a written {} row does not load: {e}", kind.table()))
        })
    }
    let snap = store.load()?;
    let mut loaded: std::collections::BTreeMap<Kind, usize> = Default::default();
    for (kind, body) in &snap.rows {
        use crate::model::*;
        match kind {
            Kind::User => check::<User>(*kind, body)?,
            Kind::Group => check::<Group>(*kind, body)?,
            Kind::Acl => check::<AclRule>(*kind, body)?,
            Kind::Host => check::<Host>(*kind, body)?,
            Kind::Net => check::<VNet>(*kind, body)?,
            Kind::Image => check::<Image>(*kind, body)?,
            Kind::Template => check::<VmTemplate>(*kind, body)?,
            Kind::Vm => check::<Vm>(*kind, body)?,
        }
        *loaded.entry(*kind).or_default() += 1;
    }
    for kind in POOLS {
        let n = loaded.get(&kind).copied().unwrap_or(0);
        if n != site.count(kind) {
            return Err(MigrateError::Database(format!(
                "{} objects of {} written, {n} read back",
                site.count(kind),
                kind.table()
            )));
        }
    }
    if snap.user_quotas.len() != site.quotas.len() {
        return Err(MigrateError::Database("quota rows not all written".into()));
    }
    Ok(())
}

/// Removes what a killed import left behind (`.<db>.partial-<pid>` of processes gone).
fn remove_stale_partials(database: &Path) {
    let dir = sqlite::parent_dir(database);
    let Some(name) = database
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        return;
    };
    let prefix = format!(".{name}.partial-");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file.strip_prefix(&prefix) else {
            continue;
        };
        let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let alive = pid
            .parse::<u32>()
            .is_ok_and(|p| Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            tracing::info!(file = %entry.path().display(), "removing what an interrupted import left");
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Makes room for a forced import: the old database is checkpointed so that no write-ahead log
/// of it can be applied to the new file after the rename. Fails while a daemon still uses it.
fn retire_existing(database: &Path) -> Result<(), MigrateError> {
    let conn = rusqlite::Connection::open(database)
        .map_err(|e| MigrateError::Database(format!("{}: {e}", database.display())))?;
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .map_err(|e| MigrateError::Database(format!("{}: {e}", database.display())))?;
    if busy != 0 {
        return Err(MigrateError::Usage(format!(
            "{} is in use: stop stratusd before replacing its database",
            database.display()
        )));
    }
    conn.pragma_update(None, "journal_mode", "DELETE")
        .map_err(|e| MigrateError::Database(format!("{}: {e}", database.display())))?;
    drop(conn);
    Ok(())
}

/// `stratusd import`: reads, checks, and (unless a dry run) writes the whole site in one
/// transaction into a temporary file that replaces nothing until it is complete.
pub fn import(opts: &ImportOptions) -> Result<ImportReport, MigrateError> {
    let started = Instant::now();
    let exists = opts.database.exists();
    if exists && !opts.force && !opts.dry_run {
        return Err(MigrateError::TargetExists(opts.database.clone()));
    }
    let _lock = if opts.dry_run {
        None
    } else {
        std::fs::create_dir_all(&opts.data_dir).map_err(|source| MigrateError::Io {
            path: opts.data_dir.clone(),
            source,
        })?;
        let lock = crate::store::DatabaseLock::try_take(&opts.database).map_err(|source| {
            MigrateError::Io {
                path: opts.database.clone(),
                source,
            }
        })?;
        Some(lock.ok_or_else(|| {
            MigrateError::Usage(format!(
                "{} is in use: stop stratusd before importing",
                opts.database.display()
            ))
        })?)
    };
    let mut progress = progress::ImportProgress::new(opts.progress_file.clone());
    progress.phase("read");
    tracing::info!(from = %opts.from.describe(), "reading the oned database");
    let (version, mut site, mut warnings) = load_site(&opts.from, opts.mac_prefix)?;
    tracing::info!(
        version = %version,
        vms = site.vms.len(),
        hosts = site.hosts.len(),
        users = site.users.len(),
        elapsed = ?started.elapsed(),
        "oned database read"
    );
    let relocation = paths::Relocation::new(&opts.old_var_dir, &opts.data_dir);
    let rewritten = match &relocation {
        Some(r) => r.rewrite_site(&mut site, &mut warnings),
        None => 0,
    };
    convert::check_consistency(&site, &mut warnings);
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let mut report = ImportReport {
        source: opts.from.describe(),
        version,
        counts: POOLS
            .iter()
            .map(|k| {
                (
                    *k,
                    site.count(*k),
                    site.counters.get(k).copied().unwrap_or(-1),
                )
            })
            .collect(),
        history_records: site.history_records(),
        leases: site.vnets.iter().map(|n| n.leases.len()).sum(),
        quotas: site.quotas.len(),
        rewritten_paths: rewritten,
        copied_files: 0,
        warnings,
        elapsed: started.elapsed(),
        written: None,
    };
    if opts.dry_run {
        return Ok(report);
    }
    remove_stale_partials(&opts.database);
    let mut copied = paths::CopiedFiles::default();
    if let (Some(r), true) = (&relocation, opts.copy_files) {
        progress.phase("copy_files");
        r.copy_files(&site, &mut copied)?;
        report.copied_files = copied.count();
    }
    let tables = store_ops(&site)?;
    let tmp = sqlite::TempFile::next_to(&opts.database)?;
    let rows: usize = tables.iter().map(|(_, ops)| ops.len()).sum();
    progress.phase("write");
    for (table, ops) in &tables {
        progress.table(table, ops.len() as u64);
    }
    tracing::info!(rows, file = %tmp.path().display(), elapsed = ?started.elapsed(), "writing stratusd's database");
    {
        let mut store = Store::open(tmp.path())?;
        for (table, ops) in &tables {
            for chunk in ops.chunks(ROWS_PER_COMMIT) {
                store.commit(chunk)?;
                progress.advance(table, chunk.len() as u64);
            }
        }
        progress.phase("verify");
        tracing::info!(elapsed = ?started.elapsed(), "committed; reading it back");
        verify_store(&store, &site)?;
        store.close()?;
    }
    if exists {
        retire_existing(&opts.database)?;
    }
    tmp.persist(&opts.database)?;
    copied.keep();
    progress.phase("done");
    report.elapsed = started.elapsed();
    report.written = Some(opts.database.clone());
    tracing::info!(
        database = %opts.database.display(),
        elapsed = ?report.elapsed,
        "import complete"
    );
    Ok(report)
}

/// `stratusd import`: settings, options, the run and its summary on stdout.
pub fn run_import(args: &crate::cli::ImportArgs) -> Result<(), String> {
    let settings = crate::cli::migration_settings(&args.config, &args.data_dir, &args.database)
        .map_err(|e| e.to_string())?;
    crate::daemon::init_logging(&settings.log_level);
    let mut quota_db = args.quota_db.clone();
    if let (None, Some(rest)) = (&quota_db, args.from.strip_prefix("sqlite:")) {
        // The quota driver's default file lives next to one.db.
        let one_db = Path::new(rest.strip_prefix("//").unwrap_or(rest));
        let beside = sqlite::parent_dir(one_db).join("onequota.db");
        if beside.is_file() {
            tracing::info!(file = %beside.display(), "reading the quota driver's database next to one.db");
            quota_db = Some(beside);
        }
    }
    let from = OnedLocation::parse(&args.from, quota_db).map_err(|e| e.to_string())?;
    let mac_prefix =
        crate::model::vnet::parse_mac_prefix(&settings.mac_prefix).ok_or_else(|| {
            format!(
                "mac_prefix {:?} is not of the form XX:XX",
                settings.mac_prefix
            )
        })?;
    let opts = ImportOptions {
        from,
        database: settings.database_path(),
        data_dir: settings.data_dir.clone(),
        force: args.force,
        dry_run: args.dry_run,
        old_var_dir: args.old_var_dir.clone(),
        copy_files: args.copy_files,
        mac_prefix,
        progress_file: args.progress_file.clone(),
    };
    let report = import(&opts).map_err(|e| format!("import: {e}"))?;
    print!("{}", report.render());
    Ok(())
}

/// `stratusd export`.
pub fn run_export(args: &crate::cli::ExportArgs) -> Result<(), String> {
    let settings = crate::cli::migration_settings(&args.config, &args.data_dir, &args.database)
        .map_err(|e| e.to_string())?;
    crate::daemon::init_logging(&settings.log_level);
    let to = match OnedLocation::parse(&args.to, args.quota_db.clone()) {
        Ok(t) => t,
        Err(e) => return Err(format!("export: {e}")),
    };
    let opts = export::ExportOptions {
        database: settings.database_path(),
        to,
        force: args.force,
    };
    let report = export::export(&opts).map_err(|e| format!("export: {e}"))?;
    print!("{}", report.render());
    Ok(())
}
