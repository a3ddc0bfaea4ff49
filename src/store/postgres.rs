//! The chain in PostgreSQL: a [`Log`], and a [`Store`] whose indexes are
//! rows written in the same transaction as the entries they describe.
//!
//! Tables (schema version 1; the version is recorded in the database and a
//! newer one is refused with "upgrade"):
//!
//! - `provledger_entries (idx, bytes)`: the canonical entries;
//! - `provledger_nodes (level, idx, hash)`: the Merkle tree nodes;
//! - `provledger_head`: one row, the head (count, hash, last time, policy
//!   index), the signed checkpoint, and `indexed`, the number of entries
//!   whose index rows are written;
//! - `provledger_rows (kind, key, idx)`: the index rows (subjects,
//!   envelopes, environments, sources, policies, releases);
//! - `provledger_schema (version)`.
//!
//! An append is one transaction: the head row is locked (`FOR UPDATE`),
//! compared with the head the caller verified against ([`LogError::HeadMoved`]
//! if another writer moved it), and the entries, nodes, index rows, head
//! and checkpoint written; it is acknowledged when PostgreSQL commits it
//! (on the standby too, under synchronous replication). Several processes
//! may append to one database: the row lock orders them and none writes a
//! fork. Triggers refuse any update or deletion of entries, nodes and rows,
//! and any head update that goes back; the database is still not trusted
//! for integrity (`verify` checks everything against the chain).
//!
//! Connections come from a small pool; a connection string naming several
//! hosts with `target_session_attrs=read-write` finds the primary after a
//! failover. A connection that fails mid-append leaves the outcome unknown
//! to us: [`LogError::Unavailable`], which the server answers "resubmit".

use std::sync::Mutex;

use postgres::error::SqlState;
use postgres::{GenericClient, NoTls, Transaction};
use r2d2_postgres::PostgresConnectionManager;

use super::log::{Group, Log, LogError, LogIter};
use super::{Append, EntryIter, Head, Mismatch, NewEntry, NodeWrite, Store, StoreError};
use crate::core::digest::Digest;
use crate::core::hash::EntryHash;
use crate::tree::Hash;

/// The schema this build writes.
pub const SCHEMA_VERSION: i32 = 1;
/// Entries read per query by `range` and by index catch-up.
const PAGE: i64 = 1024;

const SCHEMA_V1: &str = r#"
CREATE TABLE provledger_entries (
    idx bigint PRIMARY KEY CHECK (idx >= 0),
    bytes bytea NOT NULL
);
CREATE TABLE provledger_nodes (
    level smallint NOT NULL CHECK (level >= 0 AND level < 64),
    idx bigint NOT NULL CHECK (idx >= 0),
    hash bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);
CREATE TABLE provledger_head (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    count bigint NOT NULL CHECK (count >= 0),
    hash bytea CHECK (hash IS NULL OR length(hash) = 32),
    last_time bigint NOT NULL,
    policy_index bigint NOT NULL,
    checkpoint text,
    indexed bigint NOT NULL CHECK (indexed >= 0)
);
INSERT INTO provledger_head (count, hash, last_time, policy_index, checkpoint, indexed)
    VALUES (0, NULL, 0, 0, NULL, 0);
CREATE TABLE provledger_rows (
    kind smallint NOT NULL,
    key bytea NOT NULL,
    idx bigint NOT NULL,
    PRIMARY KEY (kind, key, idx)
);
CREATE UNIQUE INDEX provledger_envelopes ON provledger_rows (key) WHERE kind = 2;
CREATE FUNCTION provledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'provledger: % on % refused: the ledger is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE FUNCTION provledger_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.count < OLD.count OR NEW.indexed < OLD.indexed
        OR (NEW.count = OLD.count AND NEW.hash IS DISTINCT FROM OLD.hash) THEN
        RAISE EXCEPTION 'provledger: the head may only move forward'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER provledger_entries_fixed BEFORE UPDATE OR DELETE ON provledger_entries
    FOR EACH ROW EXECUTE FUNCTION provledger_append_only();
CREATE TRIGGER provledger_entries_kept BEFORE TRUNCATE ON provledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION provledger_append_only();
CREATE TRIGGER provledger_nodes_fixed BEFORE UPDATE OR DELETE ON provledger_nodes
    FOR EACH ROW EXECUTE FUNCTION provledger_append_only();
CREATE TRIGGER provledger_nodes_kept BEFORE TRUNCATE ON provledger_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION provledger_append_only();
CREATE TRIGGER provledger_rows_fixed BEFORE UPDATE OR DELETE ON provledger_rows
    FOR EACH ROW EXECUTE FUNCTION provledger_append_only();
CREATE TRIGGER provledger_rows_kept BEFORE TRUNCATE ON provledger_rows
    FOR EACH STATEMENT EXECUTE FUNCTION provledger_append_only();
CREATE TRIGGER provledger_head_kept BEFORE DELETE ON provledger_head
    FOR EACH ROW EXECUTE FUNCTION provledger_append_only();
CREATE TRIGGER provledger_head_kept_t BEFORE TRUNCATE ON provledger_head
    FOR EACH STATEMENT EXECUTE FUNCTION provledger_append_only();
CREATE TRIGGER provledger_head_forward BEFORE UPDATE ON provledger_head
    FOR EACH ROW EXECUTE FUNCTION provledger_head_forward();
"#;

/// The kinds of index row, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Subject = 1,
    Envelope = 2,
    Environment = 3,
    Source = 4,
    Policy = 5,
    Release = 6,
}

impl Kind {
    fn of(code: i16) -> Option<Kind> {
        [Kind::Subject, Kind::Envelope, Kind::Environment, Kind::Source, Kind::Policy, Kind::Release]
            .into_iter()
            .find(|k| *k as i16 == code)
    }

    fn describe(self, key: &[u8]) -> String {
        let text = String::from_utf8_lossy(key);
        match self {
            Kind::Subject => format!("the subject {text} index"),
            Kind::Envelope => "the envelope index".into(),
            Kind::Environment => format!("the environment {text} index"),
            Kind::Source => "the source index".into(),
            Kind::Policy => "the policy index".into(),
            Kind::Release => format!("the release {text} index"),
        }
    }
}

/// The index rows one entry implies: (kind, key), all at `entry.index`.
fn rows_of(entry: &NewEntry) -> Vec<(Kind, Vec<u8>)> {
    let mut out: Vec<(Kind, Vec<u8>)> =
        entry.subjects.iter().map(|d| (Kind::Subject, d.to_string().into_bytes())).collect();
    out.push((Kind::Envelope, entry.envelope_fingerprint.to_vec()));
    if let Some(env) = &entry.promoted_to {
        out.push((Kind::Environment, env.as_bytes().to_vec()));
    }
    if let Some(src) = &entry.source {
        out.push((Kind::Source, src.clone()));
    }
    if entry.is_policy {
        out.push((Kind::Policy, Vec::new()));
    }
    if let Some(r) = &entry.release {
        out.push((Kind::Release, r.as_bytes().to_vec()));
    }
    out
}

type Pool = r2d2::Pool<Manager>;

/// A pooled connection with the statements it has prepared: each query is
/// then one round trip, parsed and planned once per connection.
struct Conn {
    client: postgres::Client,
    prepared: std::collections::HashMap<&'static str, postgres::Statement>,
}

impl Conn {
    fn prepared(&mut self, sql: &'static str) -> Result<postgres::Statement, postgres::Error> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.prepared.insert(sql, s.clone());
        Ok(s)
    }
}

impl std::ops::Deref for Conn {
    type Target = postgres::Client;
    fn deref(&self) -> &postgres::Client {
        &self.client
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        &mut self.client
    }
}

/// r2d2_postgres's manager, for connections that keep their statements.
struct Manager(PostgresConnectionManager<NoTls>);

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;
    fn connect(&self) -> Result<Conn, postgres::Error> {
        Ok(Conn { client: self.0.connect()?, prepared: Default::default() })
    }
    fn is_valid(&self, conn: &mut Conn) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut conn.client)
    }
    fn has_broken(&self, conn: &mut Conn) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}

const HEAD_LOCKED: &str = "SELECT count, hash, last_time, policy_index, indexed FROM provledger_head FOR UPDATE";
const INSERT_ROWS: &str =
    "INSERT INTO provledger_rows (kind, key, idx) SELECT * FROM UNNEST($1::smallint[], $2::bytea[], $3::bigint[])";
/// An append's statements, in the order `append_rows` uses them.
const APPEND: [&str; 5] = [
    HEAD_LOCKED,
    "INSERT INTO provledger_entries (idx, bytes) SELECT * FROM UNNEST($1::bigint[], $2::bytea[])",
    "INSERT INTO provledger_nodes (level, idx, hash) SELECT * FROM UNNEST($1::smallint[], $2::bigint[], $3::bytea[])",
    INSERT_ROWS,
    "UPDATE provledger_head SET count = $1, hash = $2, last_time = $3, policy_index = $4, checkpoint = $5, indexed = $6",
];

/// A ledger's log and indexes in one PostgreSQL database.
pub struct PgLog {
    pool: Pool,
    /// The database, for messages: hosts and name, never the password.
    what: String,
    /// Held while index rows are caught up, so that two callers of one
    /// process do not write the same rows (other processes are ordered by
    /// the head row's lock).
    catching_up: Mutex<()>,
    /// Tree nodes read or written here, so that proofs and appends do not
    /// ask the database for each.
    cache: Mutex<NodeCache>,
}

/// Nodes held at most, after which the cache starts over (a node is 44
/// bytes here, so about 20 MiB with the map's overhead).
const NODE_CACHE: usize = 1 << 18;

/// Tree nodes of the chain up to `witness`, the newest entry they may
/// cover, with its hash. A node never changes while the entries it covers
/// do not, and by the hash chain one entry's hash stands for every entry
/// before it: whenever the head is read, the database's entry at the
/// witness is compared with it, and a database that went back or forked
/// (a backup restored, an asynchronous standby promoted) empties the cache.
/// Only nodes covering entries up to the witness are kept.
#[derive(Default)]
struct NodeCache {
    nodes: std::collections::HashMap<(u32, u64), Hash>,
    witness: Option<(u64, EntryHash)>,
}

impl NodeCache {
    /// The last entry a node covers.
    fn end(level: u32, index: u64) -> u64 {
        index.saturating_add(1).saturating_mul(1u64 << level.min(63)) - 1
    }

    fn insert(&mut self, level: u32, index: u64, hash: Hash) {
        if self.witness.is_some_and(|(w, _)| NodeCache::end(level, index) <= w) {
            if self.nodes.len() >= NODE_CACHE {
                self.nodes.clear();
            }
            self.nodes.insert((level, index), hash);
        }
    }

    /// Moves the witness to `head`, read with `witness` in force and, when
    /// the head is past it, `at_witness`: the hash of the database's entry
    /// at the witness. Forgets every node unless the database still holds
    /// the chain they were read from. Does nothing if the witness moved
    /// meanwhile (another caller saw a newer head).
    fn observe(&mut self, witness: Option<(u64, EntryHash)>, head: Option<&Head>, at_witness: Option<EntryHash>) {
        if self.witness != witness {
            return;
        }
        let same_chain = match (witness, head) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some((w, hash)), Some(h)) => match (h.count - 1).cmp(&w) {
                std::cmp::Ordering::Less => false,
                std::cmp::Ordering::Equal => h.hash == hash,
                std::cmp::Ordering::Greater => at_witness == Some(hash),
            },
        };
        if !same_chain {
            self.nodes.clear();
        }
        self.witness = head.map(|h| (h.count - 1, h.hash));
    }
}

/// `postgres://user:secret@host/db` without its password, for messages.
pub fn describe(url: &str) -> String {
    match url.parse::<postgres::Config>() {
        Ok(c) => {
            let hosts: Vec<String> = c
                .get_hosts()
                .iter()
                .zip(c.get_ports().iter().chain(std::iter::repeat(&5432)))
                .map(|(h, p)| match h {
                    postgres::config::Host::Tcp(h) => format!("{h}:{p}"),
                    postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .collect();
            format!("postgres://{}/{}", hosts.join(","), c.get_dbname().unwrap_or(""))
        }
        Err(_) => "a PostgreSQL database (its connection string does not parse)".into(),
    }
}

/// Whether `text` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

impl PgLog {
    /// Connects to the database at `url` and brings its schema to
    /// [`SCHEMA_VERSION`] (creating it in an empty database). A database of
    /// a newer schema is refused ("upgrade").
    pub fn connect(url: &str) -> Result<PgLog, LogError> {
        blocking(|| PgLog::connect_here(url))
    }

    fn connect_here(url: &str) -> Result<PgLog, LogError> {
        let what = describe(url);
        let config: postgres::Config =
            url.parse().map_err(|e| LogError::Invalid(format!("the connection string for {what}: {e}")))?;
        let manager = Manager(PostgresConnectionManager::new(config, NoTls));
        let pool = r2d2::Pool::builder()
            .max_size(16)
            .min_idle(Some(1))
            .connection_timeout(std::time::Duration::from_secs(10))
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build(manager)
            .map_err(|e| LogError::Unavailable(format!("{what}: {e}")))?;
        let log = PgLog { pool, what, catching_up: Mutex::new(()), cache: Mutex::default() };
        log.migrate()?;
        Ok(log)
    }

    /// The database, for messages (no password).
    pub fn describe(&self) -> &str {
        &self.what
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<Manager>, LogError> {
        self.pool.get().map_err(|e| LogError::Unavailable(format!("{}: {e}", self.what)))
    }

    fn err(&self, e: postgres::Error) -> LogError {
        match e.code() {
            Some(c) if *c == SqlState::DISK_FULL => LogError::DiskFull { path: self.what.clone().into() },
            Some(c) if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::T_R_SERIALIZATION_FAILURE => {
                LogError::HeadMoved
            }
            Some(c) if *c == SqlState::READ_ONLY_SQL_TRANSACTION => {
                LogError::Unavailable(format!("{} is read-only (a standby?): {e}", self.what))
            }
            // Connection exceptions, insufficient resources, operator
            // intervention (a server shutting down or starting up): the
            // database is going or coming back, not refusing the write.
            Some(c) if ["08", "53", "57"].iter().any(|class| c.code().starts_with(class)) => {
                LogError::Unavailable(format!("{}: {e}", self.what))
            }
            Some(_) => LogError::Io { path: self.what.clone().into(), source: std::io::Error::other(e.to_string()) },
            None => LogError::Unavailable(format!("{}: {e}", self.what)),
        }
    }

    /// Creates or upgrades the schema, under an advisory lock so that
    /// servers starting together do it once.
    fn migrate(&self) -> Result<(), LogError> {
        let mut conn = self.conn()?;
        // Up to date: nothing written (a hot standby can be read from).
        let exists: bool =
            conn.query_one("SELECT to_regclass('provledger_schema') IS NOT NULL", &[]).map_err(|e| self.err(e))?.get(0);
        let current: Option<i32> = if exists {
            Some(conn.query_one("SELECT version FROM provledger_schema", &[]).map_err(|e| self.err(e))?.get(0))
        } else {
            None
        };
        if let Some(v) = current {
            if v > SCHEMA_VERSION {
                return Err(LogError::Newer { what: format!("{} (provledger schema version {v})", self.what) });
            }
            if v == SCHEMA_VERSION {
                return Ok(());
            }
        }
        let mut tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute("SELECT pg_advisory_xact_lock(7052411901)", &[]).map_err(|e| self.err(e))?;
        let exists = tx
            .query_one("SELECT to_regclass('provledger_schema') IS NOT NULL", &[])
            .map_err(|e| self.err(e))?
            .get::<_, bool>(0);
        let version: i32 = if exists {
            tx.query_one("SELECT version FROM provledger_schema", &[]).map_err(|e| self.err(e))?.get(0)
        } else {
            tx.batch_execute(
                "CREATE TABLE provledger_schema (version integer NOT NULL); INSERT INTO provledger_schema VALUES (0);",
            )
            .map_err(|e| self.err(e))?;
            0
        };
        if version > SCHEMA_VERSION {
            return Err(LogError::Newer { what: format!("{} (provledger schema version {version})", self.what) });
        }
        for v in version + 1..=SCHEMA_VERSION {
            let sql = match v {
                1 => SCHEMA_V1,
                _ => unreachable!("a schema version without its migration"),
            };
            tx.batch_execute(sql).map_err(|e| self.err(e))?;
            tx.execute("UPDATE provledger_schema SET version = $1", &[&v]).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// The head row, read by `statement` ([`HEAD_LOCKED`] locks it for the
    /// rest of `tx`).
    fn head_in(
        &self,
        tx: &mut impl GenericClient,
        statement: &postgres::Statement,
    ) -> Result<(Option<Head>, u64), LogError> {
        head_of(&tx.query_one(statement, &[]).map_err(|e| self.err(e))?)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, NodeCache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `group` and, when the rows are up to date, `rows` (the
    /// entries' index rows) in one transaction.
    fn append_rows(
        &self,
        expected: Option<&Head>,
        group: &Group<'_>,
        rows: Option<&[NewEntry]>,
    ) -> Result<(), LogError> {
        let mut conn = self.conn()?;
        let mut statements = Vec::with_capacity(APPEND.len());
        for sql in APPEND {
            statements.push(conn.prepared(sql).map_err(|e| self.err(e))?);
        }
        let [lock, insert_entries, insert_nodes, insert_rows, update_head] = &statements[..] else {
            unreachable!("five statements")
        };
        let mut tx = conn.transaction().map_err(|e| self.err(e))?;
        let (current, indexed) = self.head_in(&mut tx, lock)?;
        if current.as_ref() != expected {
            return Err(LogError::HeadMoved);
        }
        group.check_extends(expected)?;
        let before = expected.map_or(0, |h| h.count);
        let idx: Vec<i64> = (before..group.head.count).map(|i| i as i64).collect();
        tx.execute(insert_entries, &[&idx, &group.entries]).map_err(|e| self.err(e))?;
        if !group.nodes.is_empty() {
            let levels: Vec<i16> = group.nodes.iter().map(|n| n.level as i16).collect();
            let at: Vec<i64> = group.nodes.iter().map(|n| n.index as i64).collect();
            let hashes: Vec<&[u8]> = group.nodes.iter().map(|n| &n.hash[..]).collect();
            tx.execute(insert_nodes, &[&levels, &at, &hashes]).map_err(|e| self.err(e))?;
        }
        let mut indexed_after = indexed;
        if let Some(rows) = rows
            && indexed == before
        {
            self.insert_rows(&mut tx, insert_rows, rows)?;
            indexed_after = group.head.count;
        }
        let h = group.head;
        tx.execute(
            update_head,
            &[
                &(h.count as i64),
                &h.hash.as_bytes().as_slice(),
                &(h.last_time as i64),
                &(h.policy_index as i64),
                &group.checkpoint,
                &(indexed_after as i64),
            ],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| match e.code() {
            // The outcome of a commit whose connection failed is unknown.
            None => LogError::Unavailable(format!("{}: the commit's outcome is unknown: {e}", self.what)),
            _ => self.err(e),
        })?;
        // The database held `expected` as its head, so a cache good up to
        // it is good up to the new head.
        let mut cache = self.cache();
        if cache.witness == expected.map(|h| (h.count - 1, h.hash)) {
            cache.witness = Some((h.count - 1, h.hash));
            for n in group.nodes {
                cache.insert(n.level, n.index, n.hash);
            }
        }
        Ok(())
    }

    fn insert_rows(
        &self,
        tx: &mut Transaction<'_>,
        statement: &postgres::Statement,
        rows: &[NewEntry],
    ) -> Result<(), LogError> {
        let (mut kinds, mut keys, mut at) = (Vec::new(), Vec::new(), Vec::new());
        for e in rows {
            for (kind, key) in rows_of(e) {
                kinds.push(kind as i16);
                keys.push(key);
                at.push(e.index as i64);
            }
        }
        tx.execute(statement, &[&kinds, &keys, &at]).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Writes the index rows of entries the rows do not cover yet (appended
    /// through [`Log::append`], which carries no rows).
    fn catch_up(&self) -> Result<(), StoreError> {
        let _held = self.catching_up.lock().unwrap_or_else(|e| e.into_inner());
        let mut conn = self.conn()?;
        let (lock, insert_rows) = (
            conn.prepared(HEAD_LOCKED).map_err(|e| self.err(e))?,
            conn.prepared(INSERT_ROWS).map_err(|e| self.err(e))?,
        );
        let mut tx = conn.transaction().map_err(|e| self.err(e))?;
        let (head, indexed) = self.head_in(&mut tx, &lock)?;
        let size = head.map_or(0, |h| h.count);
        if indexed >= size {
            return Ok(());
        }
        let mut from = indexed;
        while from < size {
            let page = tx
                .query(
                    "SELECT idx, bytes FROM provledger_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx",
                    &[&(from as i64), &((from as i64 + PAGE).min(size as i64))],
                )
                .map_err(|e| self.err(e))?;
            let mut rows = Vec::with_capacity(page.len());
            for r in &page {
                let index = r.get::<_, i64>(0) as u64;
                if index != from + rows.len() as u64 {
                    return Err(StoreError::Corrupt(format!("the database lacks entry {}", from + rows.len() as u64)));
                }
                let bytes: Vec<u8> = r.get(1);
                rows.push(
                    NewEntry::of_bytes(index, &bytes)
                        .map_err(|e| StoreError::Corrupt(format!("entry {index} does not decode: {e}")))?,
                );
            }
            if rows.is_empty() {
                return Err(StoreError::Corrupt(format!("the database lacks entry {from}")));
            }
            self.insert_rows(&mut tx, &insert_rows, &rows)?;
            from += rows.len() as u64;
        }
        tx.execute("UPDATE provledger_head SET indexed = $1", &[&(size as i64)]).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The rows' indexes are current: caught up first if they are behind.
    fn current(&self) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let row = conn.query_one("SELECT count, indexed FROM provledger_head", &[]).map_err(|e| self.err(e))?;
        drop(conn);
        if row.get::<_, i64>(1) < row.get::<_, i64>(0) {
            self.catch_up()?;
        }
        Ok(())
    }

    fn indexes_of(&self, kind: Kind, key: &[u8]) -> Result<Vec<u64>, StoreError> {
        blocking(|| self.indexes_here(kind, key))
    }

    /// The entry of each envelope fingerprint, in one query (caught up
    /// first if the rows are behind the head).
    fn envelope_entries_here(&self, fingerprints: &[[u8; 32]]) -> Result<Vec<Option<u64>>, StoreError> {
        let keys: Vec<&[u8]> = fingerprints.iter().map(|f| &f[..]).collect();
        let query = || {
            let mut conn = self.conn()?;
            let statement = conn
                .prepared(
                    "SELECT h.count > h.indexed, r.key, r.idx FROM provledger_head h \
                     LEFT JOIN provledger_rows r ON r.kind = $1 AND r.key = ANY($2)",
                )
                .map_err(|e| self.err(e))?;
            conn.query(&statement, &[&(Kind::Envelope as i16), &keys]).map_err(|e| self.err(e))
        };
        let mut rows = query()?;
        if rows.first().is_some_and(|r| r.get::<_, bool>(0)) {
            self.catch_up()?;
            rows = query()?;
        }
        let found: std::collections::HashMap<Vec<u8>, u64> = rows
            .iter()
            .filter_map(|r| Some((r.get::<_, Option<Vec<u8>>>(1)?, r.get::<_, Option<i64>>(2)? as u64)))
            .collect();
        Ok(fingerprints.iter().map(|f| found.get(&f[..]).copied()).collect())
    }

    /// The entries under `key` in index `kind`, caught up first if the
    /// rows are behind the head (one query when they are not).
    fn indexes_here(&self, kind: Kind, key: &[u8]) -> Result<Vec<u64>, StoreError> {
        let query = || {
            let mut conn = self.conn()?;
            let statement = conn
                .prepared(
                    "SELECT h.count > h.indexed, r.idx FROM provledger_head h \
                     LEFT JOIN provledger_rows r ON r.kind = $1 AND r.key = $2 ORDER BY r.idx",
                )
                .map_err(|e| self.err(e))?;
            conn.query(&statement, &[&(kind as i16), &key]).map_err(|e| self.err(e))
        };
        let mut rows = query()?;
        if rows.first().is_some_and(|r| r.get::<_, bool>(0)) {
            self.catch_up()?;
            rows = query()?;
        }
        Ok(rows.iter().filter_map(|r| r.get::<_, Option<i64>>(1)).map(|i| i as u64).collect())
    }
}

/// Runs `f`, which blocks on the database, from wherever it is called. The
/// PostgreSQL client drives its connection on a runtime of its own, which
/// cannot start inside another's: inside a multi-threaded tokio runtime
/// (the server's handlers) the worker is handed over first, inside a
/// single-threaded one `f` runs on a thread of its own.
fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        Ok(_) => std::thread::scope(|s| s.spawn(f).join().expect("a database call panicked")),
        Err(_) => f(),
    }
}

/// The head and `indexed` from a row starting `count, hash, last_time,
/// policy_index, indexed`.
fn head_of(row: &postgres::Row) -> Result<(Option<Head>, u64), LogError> {
    let count: i64 = row.get(0);
    let indexed: i64 = row.get(4);
    if count == 0 {
        return Ok((None, indexed as u64));
    }
    let hash: Vec<u8> = row.get(1);
    let hash = EntryHash::from_slice(&hash).map_err(|_| corrupt(count as u64 - 1, "the head's hash"))?;
    let head = Head {
        count: count as u64,
        hash,
        last_time: row.get::<_, i64>(2) as u64,
        policy_index: row.get::<_, i64>(3) as u64,
    };
    Ok((Some(head), indexed as u64))
}

fn corrupt(index: u64, what: &str) -> LogError {
    LogError::Corrupt { index: Some(index), reason: format!("{what} is malformed") }
}

impl Log for PgLog {
    fn head(&self) -> Result<Option<Head>, LogError> {
        blocking(|| {
            let witness = self.cache().witness;
            // One statement: no transaction needed around it.
            let mut conn = self.conn()?;
            let statement = conn
                .prepared(
                    "SELECT count, hash, last_time, policy_index, indexed, \
                     CASE WHEN count > $1::bigint + 1 THEN (SELECT bytes FROM provledger_entries WHERE idx = $1::bigint) END \
                     FROM provledger_head",
                )
                .map_err(|e| self.err(e))?;
            let row = conn.query_one(&statement, &[&witness.map_or(-1, |(w, _)| w as i64)]).map_err(|e| self.err(e))?;
            let (head, _) = head_of(&row)?;
            let at_witness = row.get::<_, Option<Vec<u8>>>(5).map(|b| crate::core::entry::entry_hash(&b));
            self.cache().observe(witness, head.as_ref(), at_witness);
            Ok(head)
        })
    }

    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, LogError> {
        let Ok(i) = i64::try_from(index) else { return Ok(None) };
        blocking(|| {
            let mut conn = self.conn()?;
            let statement =
                conn.prepared("SELECT bytes FROM provledger_entries WHERE idx = $1").map_err(|e| self.err(e))?;
            let row = conn.query_opt(&statement, &[&i]).map_err(|e| self.err(e))?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn range(&self, start: u64, end: u64) -> LogIter<'_> {
        let end = i64::try_from(end).unwrap_or(i64::MAX);
        let mut next = i64::try_from(start).unwrap_or(i64::MAX);
        let mut page: std::collections::VecDeque<(u64, Vec<u8>)> = Default::default();
        let mut done = false;
        Box::new(std::iter::from_fn(move || {
            if page.is_empty() && !done && next < end {
                let from = next;
                let fetched = blocking(|| {
                    self.conn().and_then(|mut c| {
                        c.query(
                            "SELECT idx, bytes FROM provledger_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx LIMIT $3",
                            &[&from, &end, &PAGE],
                        )
                        .map_err(|e| self.err(e))
                    })
                });
                match fetched {
                    Err(e) => {
                        done = true;
                        return Some(Err(e));
                    }
                    Ok(rows) => {
                        if (rows.len() as i64) < PAGE {
                            done = true;
                        }
                        for r in rows {
                            let i: i64 = r.get(0);
                            if i != next {
                                done = true;
                                page.clear();
                                return Some(Err(LogError::Corrupt {
                                    index: Some(next as u64),
                                    reason: format!("{}: entry {next} is missing", self.what),
                                }));
                            }
                            page.push_back((i as u64, r.get(1)));
                            next += 1;
                        }
                    }
                }
            }
            page.pop_front().map(Ok)
        }))
    }

    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, LogError> {
        let (Ok(l), Ok(i)) = (i16::try_from(level), i64::try_from(index)) else { return Ok(None) };
        if let Some(h) = self.cache().nodes.get(&(level, index)) {
            return Ok(Some(*h));
        }
        let row = blocking(|| {
            let mut conn = self.conn()?;
            let statement = conn
                .prepared("SELECT hash FROM provledger_nodes WHERE level = $1 AND idx = $2")
                .map_err(|e| self.err(e))?;
            conn.query_opt(&statement, &[&l, &i]).map_err(|e| self.err(e))
        })?;
        let Some(row) = row else { return Ok(None) };
        let hash: Vec<u8> = row.get(0);
        let hash: Hash =
            hash.as_slice().try_into().map_err(|_| corrupt(NodeCache::end(level, index), "a tree node"))?;
        self.cache().insert(level, index, hash);
        Ok(Some(hash))
    }

    fn checkpoint(&self) -> Result<Option<String>, LogError> {
        blocking(|| {
            let mut conn = self.conn()?;
            let statement = conn.prepared("SELECT checkpoint FROM provledger_head").map_err(|e| self.err(e))?;
            let row = conn.query_one(&statement, &[]).map_err(|e| self.err(e))?;
            Ok(row.get(0))
        })
    }

    fn append(&self, expected: Option<&Head>, group: &Group<'_>) -> Result<(), LogError> {
        blocking(|| self.append_rows(expected, group, None))
    }
}

/// A ledger's [`Store`] in PostgreSQL: its [`PgLog`], with the index rows
/// written in the same transactions as the entries.
pub struct PgStore {
    log: PgLog,
}

impl PgStore {
    /// See [`PgLog::connect`].
    pub fn connect(url: &str) -> Result<PgStore, StoreError> {
        Ok(PgStore { log: PgLog::connect(url)? })
    }

    pub fn log(&self) -> &PgLog {
        &self.log
    }
}

impl std::ops::Deref for PgStore {
    type Target = PgLog;
    fn deref(&self) -> &PgLog {
        &self.log
    }
}

impl Store for PgStore {
    fn head(&self) -> Result<Option<Head>, StoreError> {
        Ok(self.log.head()?)
    }
    fn get(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.log.entry(index)?)
    }
    fn entries_from(&self, start: u64) -> EntryIter<'_> {
        Box::new(self.log.range(start, u64::MAX).map(|r| r.map_err(StoreError::from)))
    }
    fn entries_for_subject(&self, digest: &Digest) -> Result<Vec<u64>, StoreError> {
        self.indexes_of(Kind::Subject, digest.to_string().as_bytes())
    }
    fn has_envelope(&self, fingerprint: &[u8; 32]) -> Result<bool, StoreError> {
        Ok(self.envelope_entry(fingerprint)?.is_some())
    }
    fn envelope_entry(&self, fingerprint: &[u8; 32]) -> Result<Option<u64>, StoreError> {
        Ok(self.indexes_of(Kind::Envelope, fingerprint)?.first().copied())
    }
    fn envelope_entries(&self, fingerprints: &[[u8; 32]]) -> Result<Vec<Option<u64>>, StoreError> {
        blocking(|| self.envelope_entries_here(fingerprints))
    }
    fn promotions_into(&self, env: &str) -> Result<Vec<u64>, StoreError> {
        self.indexes_of(Kind::Environment, env.as_bytes())
    }
    fn builds_of_source(&self, key: &[u8]) -> Result<Vec<u64>, StoreError> {
        self.indexes_of(Kind::Source, key)
    }
    fn builds_of_release(&self, release: &str) -> Result<Vec<u64>, StoreError> {
        self.indexes_of(Kind::Release, release.as_bytes())
    }
    fn policy_entries(&self) -> Result<Vec<u64>, StoreError> {
        self.indexes_of(Kind::Policy, &[])
    }

    fn check_rows(&self, entries: &[NewEntry]) -> Result<Option<Mismatch>, StoreError> {
        blocking(|| self.log.check_rows_here(entries))
    }

    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, StoreError> {
        Ok(self.log.node(level, index)?)
    }

    fn check_nodes(&self, nodes: &[NodeWrite]) -> Result<Option<Mismatch>, StoreError> {
        blocking(|| self.log.check_nodes_here(nodes))
    }

    fn checkpoint(&self) -> Result<Option<String>, StoreError> {
        Ok(self.log.checkpoint()?)
    }

    fn append(&self, expected: Option<&Head>, append: &Append<'_>) -> Result<(), StoreError> {
        let bytes: Vec<&[u8]> = append.entries.iter().map(|e| e.bytes.as_slice()).collect();
        let group = Group { entries: &bytes, nodes: append.nodes, checkpoint: append.checkpoint, head: append.head };
        Ok(blocking(|| self.log.append_rows(expected, &group, Some(append.entries)))?)
    }
}

impl PgLog {
    fn check_rows_here(&self, entries: &[NewEntry]) -> Result<Option<Mismatch>, StoreError> {
        self.current()?;
        let mut want: Vec<(Kind, Vec<u8>, u64)> =
            entries.iter().flat_map(|e| rows_of(e).into_iter().map(|(k, key)| (k, key, e.index))).collect();
        want.sort();
        let mut conn = self.conn()?;
        let stored = conn
            .query("SELECT kind, key, idx FROM provledger_rows ORDER BY kind, key, idx", &[])
            .map_err(|e| self.err(e))?;
        let mut want = want.into_iter().peekable();
        for r in &stored {
            let (code, key, index): (i16, Vec<u8>, i64) = (r.get(0), r.get(1), r.get(2));
            let index = index as u64;
            let Some(kind) = Kind::of(code) else {
                let reason = format!("the indexes hold a row of unknown kind {code}");
                return Ok(Some(Mismatch { index, reason }));
            };
            match want.peek() {
                Some(w) if (w.0, w.1.as_slice(), w.2) < (kind, key.as_slice(), index) => {
                    let reason = format!("{} lacks this entry", w.0.describe(&w.1));
                    return Ok(Some(Mismatch { index: w.2, reason }));
                }
                Some(w) if (w.0, w.1.as_slice(), w.2) == (kind, key.as_slice(), index) => {
                    want.next();
                }
                _ => {
                    let reason = format!(
                        "the indexes hold rows the chain does not imply (a row of {} with key {})",
                        kind.describe(&key),
                        hex::encode(&key)
                    );
                    return Ok(Some(Mismatch { index, reason }));
                }
            }
        }
        Ok(want.next().map(|w| Mismatch { index: w.2, reason: format!("{} lacks this entry", w.0.describe(&w.1)) }))
    }

    fn check_nodes_here(&self, nodes: &[NodeWrite]) -> Result<Option<Mismatch>, StoreError> {
        let mut want: Vec<(u32, u64, Hash)> = nodes.iter().map(|n| (n.level, n.index, n.hash)).collect();
        want.sort();
        let completed = |level: u32, index: u64| ((index + 1) << level) - 1;
        let mut conn = self.conn()?;
        let stored = conn
            .query("SELECT level, idx, hash FROM provledger_nodes ORDER BY level, idx", &[])
            .map_err(|e| self.err(e))?;
        let mut want = want.into_iter().peekable();
        for r in &stored {
            let (level, index, hash): (i16, i64, Vec<u8>) = (r.get(0), r.get(1), r.get(2));
            let (level, index) = (level as u32, index as u64);
            match want.peek() {
                Some(w) if (w.0, w.1) < (level, index) => {
                    let reason = format!("Merkle tree node ({}, {}) is missing", w.0, w.1);
                    return Ok(Some(Mismatch { index: completed(w.0, w.1), reason }));
                }
                Some(w) if (w.0, w.1) == (level, index) => {
                    if w.2.as_slice() != hash.as_slice() {
                        let reason = format!("Merkle tree node ({level}, {index}) does not match the chain");
                        return Ok(Some(Mismatch { index: completed(level, index), reason }));
                    }
                    want.next();
                }
                _ => {
                    let reason =
                        format!("the store holds Merkle tree node ({level}, {index}), which the chain does not imply");
                    return Ok(Some(Mismatch { index: completed(level, index), reason }));
                }
            }
        }
        Ok(want.next().map(|w| Mismatch {
            index: completed(w.0, w.1),
            reason: format!("Merkle tree node ({}, {}) is missing", w.0, w.1),
        }))
    }
}
