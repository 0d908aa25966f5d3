//! SQLite persistence. The store knows tables and rows, not the domain: the core hands it
//! serialised objects and it writes them in one transaction per API call.
//!
//! Schema: one table per pool (`oid`, `name`, `uid`, `gid`, `body` JSON), `pool_control` with
//! the last id handed out per pool (ids are never reused, also after deletion, as in oned),
//! and `db_versioning` stamped `3.2.1` like oned's. Migrations are versioned in code through
//! SQLite's `user_version`.

use crate::model::Kind;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database at schema version {found} is newer than this stratusd ({supported})")]
    TooNew { found: i64, supported: i64 },
}

/// An exclusive hold on the directory of a database for this process's lifetime (released
/// when dropped or when the process dies): the daemon holds it while it serves, an import while
/// it writes, so neither runs under the other (nor two daemons on one directory).
#[derive(Debug)]
pub struct DatabaseLock {
    _dir: std::fs::File,
}

impl DatabaseLock {
    /// Takes the lock of the directory holding `database` (an `flock` on the directory
    /// itself: nothing is created); `Ok(None)` when another process holds it.
    pub fn try_take(database: &Path) -> std::io::Result<Option<DatabaseLock>> {
        use std::os::unix::io::AsRawFd;
        let dir = match database.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let file = std::fs::File::open(dir)?;
        // SAFETY: flock on a descriptor this function owns; no memory is shared with C.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(Some(DatabaseLock { _dir: file }));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() == std::io::ErrorKind::WouldBlock {
            Ok(None)
        } else {
            Err(err)
        }
    }
}

/// A row change, as produced by the core for one API call.
#[derive(Debug, Clone)]
pub enum StoreOp {
    Put {
        kind: Kind,
        oid: i32,
        name: String,
        uid: i32,
        gid: i32,
        body: String,
    },
    Delete {
        kind: Kind,
        oid: i32,
    },
    /// Raise the last id handed out in a pool.
    Counter {
        kind: Kind,
        last_oid: i32,
    },
    /// A user's own quota limits (JSON body), written by `stratusd import`.
    UserQuota {
        uid: i32,
        body: String,
    },
    /// A persistent volume (keyed by its UUID, not a pool id).
    PutVolume {
        uuid: String,
        owner: String,
        body: String,
    },
    DeleteVolume {
        uuid: String,
    },
    /// An outbox entry: an effect to carry out after this commit (JSON body); `id` also
    /// raises the outbox's last id, so ids are never reused.
    Intent {
        id: i64,
        body: String,
    },
    /// An outbox entry rewritten (its effect's progress).
    IntentUpdate {
        id: i64,
        body: String,
    },
    /// An outbox entry whose effect was carried out.
    IntentDone {
        id: i64,
    },
}

/// Everything read back at start-up.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub rows: Vec<(Kind, String)>,
    pub counters: Vec<(Kind, i32)>,
    /// JSON bodies of the users' own quota limits.
    pub user_quotas: Vec<String>,
    /// The bodies of the persistent volumes.
    pub volumes: Vec<String>,
    /// Outbox entries not yet carried out (id, JSON body), oldest first.
    pub intents: Vec<(i64, String)>,
    /// The last outbox id handed out.
    pub last_intent: i64,
}

/// Each entry moves the schema one version up. Never edit an entry that has shipped: add one.
const MIGRATIONS: &[&str] = &[
    // 1: the pools of the foundation, and the ones the life cycle, networks and storage fill.
    "CREATE TABLE db_versioning (oid INTEGER PRIMARY KEY, version TEXT NOT NULL, timestamp INTEGER NOT NULL, comment TEXT);
     CREATE TABLE pool_control (tablename TEXT PRIMARY KEY, last_oid INTEGER NOT NULL);
     CREATE TABLE user_pool (oid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, uid INTEGER, gid INTEGER, body TEXT NOT NULL);
     CREATE TABLE group_pool (oid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, uid INTEGER, gid INTEGER, body TEXT NOT NULL);
     CREATE TABLE acl (oid INTEGER PRIMARY KEY, name TEXT, uid INTEGER, gid INTEGER, body TEXT NOT NULL);
     CREATE TABLE template_pool (oid INTEGER PRIMARY KEY, name TEXT NOT NULL, uid INTEGER, gid INTEGER, body TEXT NOT NULL);
     CREATE TABLE vm_pool (oid INTEGER PRIMARY KEY, name TEXT NOT NULL, uid INTEGER, gid INTEGER, body TEXT NOT NULL);
     CREATE TABLE host_pool (oid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, uid INTEGER, gid INTEGER, body TEXT NOT NULL);
     CREATE TABLE network_pool (oid INTEGER PRIMARY KEY, name TEXT NOT NULL, uid INTEGER, gid INTEGER, body TEXT NOT NULL);
     CREATE TABLE image_pool (oid INTEGER PRIMARY KEY, name TEXT NOT NULL, uid INTEGER, gid INTEGER, body TEXT NOT NULL);
     INSERT INTO db_versioning (oid, version, timestamp, comment) VALUES (0, '3.2.1', strftime('%s','now'), 'stratusd schema 1');",
    // 2: users' own quota limits, as StratusLab's quota driver kept them (`stratusd import`).
    "CREATE TABLE user_quota (uid INTEGER PRIMARY KEY, body TEXT NOT NULL);",
    // 3: the persistent volumes of the built-in pdisk service, with their mounts.
    "CREATE TABLE volume_pool (uuid TEXT PRIMARY KEY, owner TEXT NOT NULL, body TEXT NOT NULL);",
    // 4: the outbox of effects decided by committed writes (core::outbox).
    "CREATE TABLE outbox (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
];

pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// An in-memory database, for unit tests of the core.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Store, StoreError> {
        // WAL: readers never block the writer; NORMAL sync is durable across a crash of the
        // daemon (kill -9), which is what "commit before answering" must survive.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mut store = Store { conn };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let supported = MIGRATIONS.len() as i64;
        if version > supported {
            return Err(StoreError::TooNew {
                found: version,
                supported,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
            tracing::info!(version = i + 1, "database schema migrated");
        }
        Ok(())
    }

    pub fn is_empty(&self) -> Result<bool, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM user_pool", [], |r| r.get(0))?;
        Ok(n == 0)
    }

    pub fn load(&self) -> Result<Snapshot, StoreError> {
        // One read transaction: a consistent snapshot even while another process writes.
        let tx = self.conn.unchecked_transaction()?;
        let snap = self.load_rows()?;
        tx.commit()?;
        Ok(snap)
    }

    fn load_rows(&self) -> Result<Snapshot, StoreError> {
        let mut snap = Snapshot::default();
        for kind in Kind::ALL {
            let mut stmt = self
                .conn
                .prepare(&format!("SELECT body FROM {} ORDER BY oid", kind.table()))?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            for body in rows {
                snap.rows.push((kind, body?));
            }
            let last: Option<i32> = self
                .conn
                .query_row(
                    "SELECT last_oid FROM pool_control WHERE tablename = ?1",
                    [kind.table()],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(last) = last {
                snap.counters.push((kind, last));
            }
        }
        let mut stmt = self
            .conn
            .prepare("SELECT body FROM user_quota ORDER BY uid")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        for body in rows {
            snap.user_quotas.push(body?);
        }
        let mut stmt = self
            .conn
            .prepare("SELECT body FROM volume_pool ORDER BY uuid")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        for body in rows {
            snap.volumes.push(body?);
        }
        let mut stmt = self
            .conn
            .prepare("SELECT id, body FROM outbox ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            snap.intents.push(row?);
        }
        let last: Option<i64> = self
            .conn
            .query_row(
                "SELECT last_oid FROM pool_control WHERE tablename = 'outbox'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        snap.last_intent = last.unwrap_or(0);
        Ok(snap)
    }

    /// Applies all operations of one API call atomically.
    pub fn commit(&mut self, ops: &[StoreOp]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let timer = crate::metrics::Timer::start();
        let result = self.commit_ops(ops);
        crate::metrics::metrics().sqlite_commit(timer.elapsed(), result.is_ok());
        result
    }

    fn commit_ops(&mut self, ops: &[StoreOp]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for op in ops {
            match op {
                StoreOp::Put {
                    kind,
                    oid,
                    name,
                    uid,
                    gid,
                    body,
                } => {
                    tx.prepare_cached(&format!(
                        "INSERT OR REPLACE INTO {} (oid, name, uid, gid, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                        kind.table()
                    ))?
                    .execute(params![oid, name, uid, gid, body])?;
                }
                StoreOp::Delete { kind, oid } => {
                    tx.prepare_cached(&format!("DELETE FROM {} WHERE oid = ?1", kind.table()))?
                        .execute([oid])?;
                }
                StoreOp::Counter { kind, last_oid } => {
                    tx.prepare_cached(
                        "INSERT INTO pool_control (tablename, last_oid) VALUES (?1, ?2)
                         ON CONFLICT(tablename) DO UPDATE SET last_oid = MAX(last_oid, excluded.last_oid)",
                    )?
                    .execute(params![kind.table(), last_oid])?;
                }
                StoreOp::UserQuota { uid, body } => {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO user_quota (uid, body) VALUES (?1, ?2)",
                    )?
                    .execute(params![uid, body])?;
                }
                StoreOp::PutVolume { uuid, owner, body } => {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO volume_pool (uuid, owner, body) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![uuid, owner, body])?;
                }
                StoreOp::DeleteVolume { uuid } => {
                    tx.prepare_cached("DELETE FROM volume_pool WHERE uuid = ?1")?
                        .execute([uuid])?;
                }
                StoreOp::Intent { id, body } => {
                    tx.prepare_cached("INSERT INTO outbox (id, body) VALUES (?1, ?2)")?
                        .execute(params![id, body])?;
                    tx.prepare_cached(
                        "INSERT INTO pool_control (tablename, last_oid) VALUES ('outbox', ?1)
                         ON CONFLICT(tablename) DO UPDATE SET last_oid = MAX(last_oid, excluded.last_oid)",
                    )?
                    .execute([id])?;
                }
                StoreOp::IntentUpdate { id, body } => {
                    tx.prepare_cached("UPDATE outbox SET body = ?2 WHERE id = ?1")?
                        .execute(params![id, body])?;
                }
                StoreOp::IntentDone { id } => {
                    tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?
                        .execute([id])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Checkpoints the write-ahead log into the database file and closes it in rollback-journal
    /// mode, so that the file alone holds everything (an import renames it into place).
    pub fn close(self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        self.conn.pragma_update(None, "journal_mode", "DELETE")?;
        self.conn.close().map_err(|(_, e)| StoreError::Sqlite(e))
    }

    /// A digest of every row, for tests that check that bad input changed nothing.
    pub fn fingerprint(&self) -> Result<String, StoreError> {
        let mut all = String::new();
        for kind in Kind::ALL {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT oid, body FROM {} ORDER BY oid",
                kind.table()
            ))?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (oid, body) = row?;
                all.push_str(&format!("{}:{}:{}\n", kind.table(), oid, body));
            }
        }
        let mut stmt = self
            .conn
            .prepare("SELECT uuid, body FROM volume_pool ORDER BY uuid")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (uuid, body) = row?;
            all.push_str(&format!("volume_pool:{uuid}:{body}\n"));
        }
        let mut stmt = self
            .conn
            .prepare("SELECT tablename, last_oid FROM pool_control ORDER BY tablename")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (t, n) = row?;
            all.push_str(&format!("ctl:{t}:{n}\n"));
        }
        Ok(sha1_smol::Sha1::from(all).digest().to_string())
    }
}
