//! oned 3.2's tables as rows of plain values: what a backend (SQLite, MySQL) reads for an
//! import and writes for an export. The schema is oned's own (`CREATE TABLE` texts as 3.2 issued
//! them, also on MySQL) plus the two tables of StratusLab's quota driver.

/// One SQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Value {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            Value::Real(f) => Some(*f as i64),
            Value::Text(t) => t.trim().parse().ok(),
            Value::Null => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(n) => Some(*n as f64),
            Value::Real(f) => Some(*f),
            Value::Text(t) => t.trim().parse().ok(),
            Value::Null => None,
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

impl From<i32> for Value {
    fn from(n: i32) -> Self {
        Value::Int(n.into())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Int(b.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(Value::Null)
    }
}

/// A table of an oned 3.2 database: its `CREATE TABLE` statement and its columns, in oned's
/// order.
pub struct TableDef {
    pub name: &'static str,
    pub create: &'static str,
    pub columns: &'static [&'static str],
}

/// oned 3.2's tables, with the statements `oned` issued on its first start (the same text on
/// SQLite and MySQL).
pub const ONED_TABLES: &[TableDef] = &[
    TableDef {
        name: "vm_pool",
        create: "CREATE TABLE vm_pool (oid INTEGER PRIMARY KEY, name VARCHAR(128), body TEXT, uid INTEGER, gid INTEGER, last_poll INTEGER, state INTEGER, lcm_state INTEGER, owner_u INTEGER, group_u INTEGER, other_u INTEGER)",
        columns: &["oid", "name", "body", "uid", "gid", "last_poll", "state", "lcm_state", "owner_u", "group_u", "other_u"],
    },
    TableDef {
        name: "history",
        create: "CREATE TABLE history (vid INTEGER, seq INTEGER, body TEXT, PRIMARY KEY(vid,seq))",
        columns: &["vid", "seq", "body"],
    },
    TableDef {
        name: "host_pool",
        create: "CREATE TABLE host_pool (oid INTEGER PRIMARY KEY, name VARCHAR(128), body TEXT, state INTEGER, last_mon_time INTEGER, uid INTEGER, gid INTEGER, owner_u INTEGER, group_u INTEGER, other_u INTEGER, UNIQUE(name))",
        columns: &["oid", "name", "body", "state", "last_mon_time", "uid", "gid", "owner_u", "group_u", "other_u"],
    },
    TableDef {
        name: "network_pool",
        create: "CREATE TABLE network_pool (oid INTEGER PRIMARY KEY, name VARCHAR(128), body TEXT, uid INTEGER, gid INTEGER, owner_u INTEGER, group_u INTEGER, other_u INTEGER, UNIQUE(name,uid))",
        columns: &["oid", "name", "body", "uid", "gid", "owner_u", "group_u", "other_u"],
    },
    TableDef {
        name: "leases",
        create: "CREATE TABLE leases (oid INTEGER, ip BIGINT, body TEXT, PRIMARY KEY(oid,ip))",
        columns: &["oid", "ip", "body"],
    },
    TableDef {
        name: "group_pool",
        create: "CREATE TABLE group_pool (oid INTEGER PRIMARY KEY, name VARCHAR(128), body TEXT, uid INTEGER, gid INTEGER, owner_u INTEGER, group_u INTEGER, other_u INTEGER, UNIQUE(name))",
        columns: &["oid", "name", "body", "uid", "gid", "owner_u", "group_u", "other_u"],
    },
    TableDef {
        name: "user_pool",
        create: "CREATE TABLE user_pool (oid INTEGER PRIMARY KEY, name VARCHAR(128), body TEXT, uid INTEGER, gid INTEGER, owner_u INTEGER, group_u INTEGER, other_u INTEGER, UNIQUE(name))",
        columns: &["oid", "name", "body", "uid", "gid", "owner_u", "group_u", "other_u"],
    },
    TableDef {
        name: "image_pool",
        create: "CREATE TABLE image_pool (oid INTEGER PRIMARY KEY, name VARCHAR(128), body TEXT, uid INTEGER, gid INTEGER, owner_u INTEGER, group_u INTEGER, other_u INTEGER, UNIQUE(name,uid) )",
        columns: &["oid", "name", "body", "uid", "gid", "owner_u", "group_u", "other_u"],
    },
    TableDef {
        name: "template_pool",
        create: "CREATE TABLE template_pool (oid INTEGER PRIMARY KEY, name VARCHAR(128), body TEXT, uid INTEGER, gid INTEGER, owner_u INTEGER, group_u INTEGER, other_u INTEGER)",
        columns: &["oid", "name", "body", "uid", "gid", "owner_u", "group_u", "other_u"],
    },
    TableDef {
        name: "acl",
        create: "CREATE TABLE acl (oid INT PRIMARY KEY, user BIGINT, resource BIGINT, rights BIGINT)",
        columns: &["oid", "user", "resource", "rights"],
    },
    TableDef {
        name: "pool_control",
        create: "CREATE TABLE pool_control (tablename VARCHAR(32) PRIMARY KEY, last_oid BIGINT UNSIGNED)",
        columns: &["tablename", "last_oid"],
    },
    TableDef {
        name: "db_versioning",
        create: "CREATE TABLE db_versioning (oid INTEGER PRIMARY KEY, version VARCHAR(256), timestamp INTEGER, comment VARCHAR(256))",
        columns: &["oid", "version", "timestamp", "comment"],
    },
];

/// The columns of StratusLab's quota tables (`quotas`: per-user limits; `usage`: the driver's
/// cache of what each user uses).
pub const QUOTA_COLUMNS: &[&str] = &["UID", "CPU", "MEMORY", "NUM_VMS", "STORAGE"];

/// The quota tables as Ruby's Sequel created them for quota.rb, per backend.
pub const SQLITE_QUOTA_TABLES: &[&str] = &[
    "CREATE TABLE `quotas` (`UID` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `CPU` double precision, `MEMORY` integer, `NUM_VMS` integer, `STORAGE` integer)",
    "CREATE INDEX `quotas_UID_index` ON `quotas` (`UID`)",
    "CREATE TABLE `usage` (`UID` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `CPU` double precision, `MEMORY` integer, `NUM_VMS` integer, `STORAGE` integer)",
    "CREATE INDEX `usage_UID_index` ON `usage` (`UID`)",
];

pub const MYSQL_QUOTA_TABLES: &[&str] = &[
    "CREATE TABLE `quotas` (`UID` integer NOT NULL PRIMARY KEY AUTO_INCREMENT, `CPU` double precision, `MEMORY` integer, `NUM_VMS` integer, `STORAGE` integer)",
    "CREATE INDEX `quotas_UID_index` ON `quotas` (`UID`)",
    "CREATE TABLE `usage` (`UID` integer NOT NULL PRIMARY KEY AUTO_INCREMENT, `CPU` double precision, `MEMORY` integer, `NUM_VMS` integer, `STORAGE` integer)",
    "CREATE INDEX `usage_UID_index` ON `usage` (`UID`)",
];

/// The tables in the order an import reads them: `db_versioning` first, so that a database of
/// another version is refused before its tables are read as 3.2's.
pub fn read_order() -> impl Iterator<Item = &'static TableDef> {
    let first = ONED_TABLES.iter().filter(|d| d.name == "db_versioning");
    first.chain(ONED_TABLES.iter().filter(|d| d.name != "db_versioning"))
}

pub fn table_def(name: &str) -> Option<&'static TableDef> {
    ONED_TABLES.iter().find(|t| t.name == name)
}

/// The rows of every oned table, as read for an import or built for an export.
#[derive(Debug, Default, Clone)]
pub struct OnedTables {
    /// Rows per table, in the column order of [`TableDef::columns`] (quota tables: in
    /// [`QUOTA_COLUMNS`] order).
    pub rows: std::collections::BTreeMap<String, Vec<Vec<Value>>>,
}

impl OnedTables {
    pub fn table(&self, name: &str) -> &[Vec<Value>] {
        self.rows.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn has(&self, name: &str) -> bool {
        self.rows.contains_key(name)
    }

    pub fn push(&mut self, table: &str, row: Vec<Value>) {
        self.rows.entry(table.to_string()).or_default().push(row);
    }
}
