//! Many tills, one store: each till's journal shipped to the store's
//! PostgreSQL database.
//!
//! The journal stays the till's source of truth; the store is a copy that
//! only grows. Shipping is idempotent: an event's key in the store is the
//! journal's installation id and its `events.id`, inserted with `ON CONFLICT
//! DO NOTHING` beside a SHA-256 of its content, so an event sent twice (a
//! crash after the store's commit, two shippers at once) is recognised, and
//! one sent again with other content is refused with an error naming the
//! till and the event. The till's high-water mark in the store moves in the
//! same transaction as the events; the journal's own mark (`shipping`) moves
//! only after that commit. The store's projection, `orders` and `refunds`,
//! is upserted from the journal's current rows: the latest state wins.

mod schema;
mod view;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, NoTls};

use crate::config::StoreSettings;
use crate::journal::{Journal, JournalError, JournalWriter, ShipBatch, ShipEvent};

pub use schema::MIGRATIONS;
pub use view::{StoreDay, StoreDayReport, TillDay};

/// How long connecting, and then each batch, may take before the store is
/// taken for unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const BATCH_TIMEOUT: Duration = Duration::from_secs(60);

/// Who ships: the store keeps every till's events apart by `installation_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Till {
    /// The journal's random installation id.
    pub installation_id: String,
    /// `till.id`, for people.
    pub till_id: String,
    /// The merchant: with the order number, the key of the store's orders.
    pub mch_id: String,
}

/// What one shipping run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Events sent in this run (some may have been in the store already).
    pub shipped: u64,
    /// The store's high-water mark for this till: every event up to it is there.
    pub through: i64,
    /// Events of the journal not yet in the store.
    pub behind: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot reach the store database at {target} ({cause}): check that PostgreSQL runs there and that store.database_url, the user and the password (store.password_file or SCANPAY_STORE_PASSWORD) are right; tills keep taking payments meanwhile and ship what waits once it answers"
    )]
    Unreachable { target: String, cause: String },
    #[error(
        "the store database at {target} failed ({cause}); nothing of this batch was kept there, it is sent again next time"
    )]
    Database { target: String, cause: String },
    #[error(
        "the store database at {target} did not answer within {secs} s; nothing of this batch was kept there, it is sent again next time"
    )]
    Timeout { target: String, secs: u64 },
    #[error(
        "till {till_id} (installation {installation_id}): event {event_id} is already in the store with different content (store sha256 {stored}, journal sha256 {sent}); refusing the batch. Two journals share an installation id (a copied journal file?) or the store was edited: keep both as they are and compare them"
    )]
    Conflict {
        till_id: String,
        installation_id: String,
        event_id: i64,
        stored: String,
        sent: String,
    },
    #[error(
        "till {till_id} (installation {installation_id}): order {out_trade_no} of merchant {mch_id} is already in the store from installation {other}; refusing the batch: two tills minted the same order number, review both journals"
    )]
    ForeignOrder {
        till_id: String,
        installation_id: String,
        mch_id: String,
        out_trade_no: String,
        other: String,
    },
    #[error(
        "the store database's schema is version {found}, newer than this scanpay knows ({known}): upgrade scanpay on this till"
    )]
    TooNew { found: i32, known: usize },
    #[error(
        "the store database at {target} has schema version {found}, older than this scanpay's: run scanpay sync on a till (it brings the schema up to date) and ask again"
    )]
    NotReady { target: String, found: i32 },
    #[error(
        "till {till_id}: its journal has no installation id, so the store could not tell its events from another till's; nothing was shipped: open the journal once with this scanpay (scanpay sync), which gives it one"
    )]
    NoInstallation { till_id: String },
    #[error(
        "the store database holds a row scanpay cannot read ({what}): it was changed by hand or by another program; nothing is shown rather than a wrong figure. The tills' journals have it right: delete the row, set its till's shipped_through in the tills table back to 0, and run scanpay sync on that till, which ships its journal again"
    )]
    Unreadable { what: String },
    #[error("{0}")]
    Journal(#[from] JournalError),
}

/// Checks `store.database_url`: a PostgreSQL URL with a user, naming this
/// machine (loopback or a Unix socket: the connection has no TLS), without a
/// password (that comes from a file or the environment).
pub fn check_url(url: &str) -> Result<tokio_postgres::Config, String> {
    let config: tokio_postgres::Config = url.parse().map_err(|e| {
        format!(
            "store.database_url is not a PostgreSQL URL ({e}); write it like postgres://scanpay@127.0.0.1:5432/store"
        )
    })?;
    if config.get_password().is_some() {
        return Err("store.database_url holds a password: put it in a file only you can read (store.password_file, chmod 600) or in the SCANPAY_STORE_PASSWORD environment variable".into());
    }
    if config.get_user().is_none_or(str::is_empty) {
        return Err(
            "store.database_url names no user: write it like postgres://scanpay@127.0.0.1:5432/store"
                .into(),
        );
    }
    if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
        return Err("store.database_url names no host: write it like postgres://scanpay@127.0.0.1:5432/store".into());
    }
    for host in config.get_hosts() {
        if let Host::Tcp(name) = host
            && !is_loopback(name)
        {
            return Err(format!(
                "store.database_url names {name}, not this machine: this scanpay connects to the store database without TLS, so only over loopback (127.0.0.1, ::1, localhost) or a Unix socket; reach a database elsewhere through a tunnel ending on this machine (SSH or WireGuard)"
            ));
        }
    }
    if let Some(addr) = config.get_hostaddrs().iter().find(|a| !a.is_loopback()) {
        return Err(format!(
            "store.database_url has hostaddr {addr}, not this machine: only loopback or a Unix socket (no TLS)"
        ));
    }
    Ok(config)
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The URL as errors show it (it never holds a password: [`check_url`]).
fn target(settings: &StoreSettings) -> String {
    settings.database_url.clone()
}

/// A connection to the store database, its schema brought up to date.
pub struct Store {
    client: Client,
    target: String,
}

impl Store {
    /// Connects and migrates. The connection's task runs on the current
    /// runtime until the client is dropped.
    pub async fn connect(settings: &StoreSettings) -> Result<Self, StoreError> {
        let mut store = Self::open(settings).await?;
        let found = schema::migrate(&mut store.client)
            .await
            .map_err(|e| store.failed(&e))?;
        if found > MIGRATIONS.len() as i32 {
            return Err(StoreError::TooNew {
                found,
                known: MIGRATIONS.len(),
            });
        }
        Ok(store)
    }

    /// Connects for reading only (`scanpay store`): no migration, and every
    /// statement in a read-only session. A store no till has shipped to yet
    /// is an error that says so.
    pub async fn connect_read_only(settings: &StoreSettings) -> Result<Self, StoreError> {
        let store = Self::open(settings).await?;
        store
            .client
            .batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            .await
            .map_err(|e| store.failed(&e))?;
        let has_schema: bool = store
            .client
            .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
            .await
            .map_err(|e| store.failed(&e))?
            .get(0);
        let found: Option<i32> = if has_schema {
            store
                .client
                .query_opt("SELECT version FROM schema_version", &[])
                .await
                .map_err(|e| store.failed(&e))?
                .map(|r| r.get(0))
        } else {
            None
        };
        match found {
            Some(v) if v > MIGRATIONS.len() as i32 => Err(StoreError::TooNew {
                found: v,
                known: MIGRATIONS.len(),
            }),
            Some(v) if v == MIGRATIONS.len() as i32 => Ok(store),
            other => Err(StoreError::NotReady {
                target: store.target.clone(),
                found: other.unwrap_or(0),
            }),
        }
    }

    /// Connects, nothing more.
    async fn open(settings: &StoreSettings) -> Result<Self, StoreError> {
        let target = target(settings);
        let mut config =
            check_url(&settings.database_url).map_err(|cause| StoreError::Unreachable {
                target: target.clone(),
                cause,
            })?;
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("scanpay");
        if let Some(password) = &settings.password {
            config.password(password);
        }
        let unreachable = |cause: String| StoreError::Unreachable {
            target: target.clone(),
            cause,
        };
        let (client, connection) = tokio::time::timeout(
            CONNECT_TIMEOUT + Duration::from_secs(1),
            config.connect(NoTls),
        )
        .await
        .map_err(|_| unreachable("no answer within 5 s".into()))?
        .map_err(|e| unreachable(cause(&e)))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "store database connection ended");
            }
        });
        Ok(Self { client, target })
    }

    fn failed(&self, e: &tokio_postgres::Error) -> StoreError {
        failed(&self.target, e)
    }

    /// The store's high-water mark for this installation (0: none).
    async fn mark(&self, installation_id: &str) -> Result<i64, StoreError> {
        let row = self
            .client
            .query_opt(
                "SELECT shipped_through FROM tills WHERE installation_id = $1",
                &[&installation_id],
            )
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(row.map_or(0, |r| r.get(0)))
    }

    /// Ships one batch, its events up to `through`, in one transaction;
    /// returns the till's mark after it.
    async fn ship(
        &mut self,
        till: &Till,
        batch: &ShipBatch,
        through: i64,
    ) -> Result<i64, StoreError> {
        let target = self.target.clone();
        match tokio::time::timeout(BATCH_TIMEOUT, self.ship_inner(till, batch, through)).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout {
                target,
                secs: BATCH_TIMEOUT.as_secs(),
            }),
        }
    }

    async fn ship_inner(
        &mut self,
        till: &Till,
        batch: &ShipBatch,
        through: i64,
    ) -> Result<i64, StoreError> {
        let target = self.target.clone();
        // Not `self.failed`: the transaction borrows `self`.
        let db = |e: tokio_postgres::Error| failed(&target, &e);
        let tx = self.client.transaction().await.map_err(db)?;
        let e = &batch.events;
        let ids: Vec<i64> = e.iter().map(|e| e.id).collect();
        let hashes: Vec<Vec<u8>> = e.iter().map(payload_hash).collect();
        let order_ids: Vec<i64> = e.iter().map(|e| e.order_id).collect();
        let trade_nos: Vec<&str> = e.iter().map(|e| e.out_trade_no.as_str()).collect();
        let at: Vec<i64> = e.iter().map(|e| e.at_ms).collect();
        let since: Vec<Option<i64>> = e.iter().map(|e| e.since_t0_ms).collect();
        let kinds: Vec<&str> = e.iter().map(|e| e.kind.as_str()).collect();
        let calls: Vec<Option<&str>> = e.iter().map(|e| e.call.as_deref()).collect();
        let summaries: Vec<&str> = e.iter().map(|e| e.summary.as_str()).collect();
        let details: Vec<&str> = e.iter().map(|e| e.detail.as_str()).collect();
        let inserted = tx
            .query(
                "INSERT INTO events (installation_id, event_id, order_id, out_trade_no, at_ms, since_t0_ms, kind, call, summary, detail, payload_sha256) \
                 SELECT $1, u.event_id, u.order_id, u.out_trade_no, u.at_ms, u.since_t0_ms, u.kind, u.call, u.summary, u.detail::jsonb, u.sha \
                 FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bytea[]) \
                   AS u(event_id, order_id, out_trade_no, at_ms, since_t0_ms, kind, call, summary, detail, sha) \
                 ON CONFLICT (installation_id, event_id) DO NOTHING RETURNING event_id",
                &[&till.installation_id, &ids, &order_ids, &trade_nos, &at, &since, &kinds, &calls, &summaries, &details, &hashes],
            )
            .await
            .map_err(db)?;
        if inserted.len() < ids.len() {
            // Some were there already: each must be the very same event.
            let stored = tx
                .query(
                    "SELECT event_id, payload_sha256 FROM events WHERE installation_id = $1 AND event_id = ANY($2)",
                    &[&till.installation_id, &ids],
                )
                .await
                .map_err(db)?;
            let stored: std::collections::HashMap<i64, Vec<u8>> =
                stored.iter().map(|r| (r.get(0), r.get(1))).collect();
            for (id, hash) in ids.iter().zip(&hashes) {
                if let Some(there) = stored.get(id)
                    && there != hash
                {
                    return Err(StoreError::Conflict {
                        till_id: till.till_id.clone(),
                        installation_id: till.installation_id.clone(),
                        event_id: *id,
                        stored: hex::encode(there),
                        sent: hex::encode(hash),
                    });
                }
            }
        }
        self::upsert_orders(&tx, till, batch).await.map_err(db)?;
        self::upsert_refunds(&tx, till, batch).await.map_err(db)?;
        if let Some(row) = tx
            .query_opt(
                "SELECT out_trade_no, installation_id FROM orders WHERE mch_id = $1 AND out_trade_no = ANY($2) AND installation_id <> $3 LIMIT 1",
                &[&till.mch_id, &trade_nos, &till.installation_id],
            )
            .await
            .map_err(db)?
        {
            return Err(StoreError::ForeignOrder {
                till_id: till.till_id.clone(),
                installation_id: till.installation_id.clone(),
                mch_id: till.mch_id.clone(),
                out_trade_no: row.get(0),
                other: row.get(1),
            });
        }
        let mark: i64 = tx
            .query_one(
                "INSERT INTO tills (installation_id, till_id, mch_id, shipped_through, shipped_at) VALUES ($1, $2, $3, $4, now()) \
                 ON CONFLICT (installation_id) DO UPDATE SET till_id = excluded.till_id, mch_id = excluded.mch_id, \
                   shipped_through = GREATEST(tills.shipped_through, excluded.shipped_through), shipped_at = now() \
                 RETURNING shipped_through",
                &[&till.installation_id, &till.till_id, &till.mch_id, &through],
            )
            .await
            .map_err(db)?
            .get(0);
        tx.commit().await.map_err(db)?;
        Ok(mark)
    }
}

async fn upsert_orders(
    tx: &tokio_postgres::Transaction<'_>,
    till: &Till,
    batch: &ShipBatch,
) -> Result<(), tokio_postgres::Error> {
    let o = &batch.orders;
    if o.is_empty() {
        return Ok(());
    }
    let nos: Vec<&str> = o.iter().map(|o| o.out_trade_no.as_str()).collect();
    let tills: Vec<&str> = o.iter().map(|o| o.till_id.as_str()).collect();
    let fees: Vec<i64> = o.iter().map(|o| o.total_fee).collect();
    let bodies: Vec<&str> = o.iter().map(|o| o.body.as_str()).collect();
    let masked: Vec<&str> = o.iter().map(|o| o.auth_code_masked.as_str()).collect();
    let created: Vec<i64> = o.iter().map(|o| o.created_at_ms).collect();
    let sent: Vec<Option<i64>> = o.iter().map(|o| o.micropay_sent_at_ms).collect();
    let states: Vec<&str> = o.iter().map(|o| o.state.as_str()).collect();
    let finished: Vec<Option<i64>> = o.iter().map(|o| o.finished_at_ms).collect();
    let txids: Vec<Option<&str>> = o.iter().map(|o| o.transaction_id.as_deref()).collect();
    let errs: Vec<Option<&str>> = o.iter().map(|o| o.err_code.as_deref()).collect();
    let messages: Vec<Option<&str>> = o.iter().map(|o| o.message.as_deref()).collect();
    let versions: Vec<i64> = o.iter().map(|o| o.version).collect();
    tx.execute(
        "INSERT INTO orders (mch_id, out_trade_no, installation_id, till_id, total_fee, body, auth_code_masked, created_at_ms, \
           micropay_sent_at_ms, state, finished_at_ms, transaction_id, err_code, message, version) \
         SELECT $1, u.no, $2, u.till, u.fee, u.body, u.masked, u.created, u.sent, u.state, u.finished, u.txid, u.err, u.message, u.version \
         FROM unnest($3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::text[], \
                     $11::bigint[], $12::text[], $13::text[], $14::text[], $15::bigint[]) \
           AS u(no, till, fee, body, masked, created, sent, state, finished, txid, err, message, version) \
         ON CONFLICT (mch_id, out_trade_no) DO UPDATE SET till_id = excluded.till_id, total_fee = excluded.total_fee, \
           body = excluded.body, auth_code_masked = excluded.auth_code_masked, created_at_ms = excluded.created_at_ms, \
           micropay_sent_at_ms = excluded.micropay_sent_at_ms, state = excluded.state, finished_at_ms = excluded.finished_at_ms, \
           transaction_id = excluded.transaction_id, err_code = excluded.err_code, message = excluded.message, \
           version = excluded.version \
         WHERE orders.installation_id = excluded.installation_id AND orders.version < excluded.version",
        &[&till.mch_id, &till.installation_id, &nos, &tills, &fees, &bodies, &masked, &created, &sent, &states, &finished, &txids, &errs, &messages, &versions],
    )
    .await
    .map(drop)
}

async fn upsert_refunds(
    tx: &tokio_postgres::Transaction<'_>,
    till: &Till,
    batch: &ShipBatch,
) -> Result<(), tokio_postgres::Error> {
    let r = &batch.refunds;
    if r.is_empty() {
        return Ok(());
    }
    let nos: Vec<&str> = r.iter().map(|r| r.out_refund_no.as_str()).collect();
    let trade_nos: Vec<&str> = r.iter().map(|r| r.out_trade_no.as_str()).collect();
    let fees: Vec<i64> = r.iter().map(|r| r.refund_fee).collect();
    let reasons: Vec<Option<&str>> = r.iter().map(|r| r.reason.as_deref()).collect();
    let created: Vec<i64> = r.iter().map(|r| r.created_at_ms).collect();
    let states: Vec<&str> = r.iter().map(|r| r.state.as_str()).collect();
    let finished: Vec<Option<i64>> = r.iter().map(|r| r.finished_at_ms).collect();
    let refund_ids: Vec<Option<&str>> = r.iter().map(|r| r.refund_id.as_deref()).collect();
    let errs: Vec<Option<&str>> = r.iter().map(|r| r.err_code.as_deref()).collect();
    let messages: Vec<Option<&str>> = r.iter().map(|r| r.message.as_deref()).collect();
    let versions: Vec<i64> = r.iter().map(|r| r.version).collect();
    tx.execute(
        "INSERT INTO refunds (mch_id, out_refund_no, out_trade_no, installation_id, refund_fee, reason, created_at_ms, state, \
           finished_at_ms, refund_id, err_code, message, version) \
         SELECT $1, u.no, u.trade_no, $2, u.fee, u.reason, u.created, u.state, u.finished, u.refund_id, u.err, u.message, u.version \
         FROM unnest($3::text[], $4::text[], $5::bigint[], $6::text[], $7::bigint[], $8::text[], $9::bigint[], $10::text[], \
                     $11::text[], $12::text[], $13::bigint[]) \
           AS u(no, trade_no, fee, reason, created, state, finished, refund_id, err, message, version) \
         ON CONFLICT (mch_id, out_refund_no) DO UPDATE SET out_trade_no = excluded.out_trade_no, refund_fee = excluded.refund_fee, \
           reason = excluded.reason, created_at_ms = excluded.created_at_ms, state = excluded.state, \
           finished_at_ms = excluded.finished_at_ms, refund_id = excluded.refund_id, err_code = excluded.err_code, \
           message = excluded.message, version = excluded.version \
         WHERE refunds.installation_id = excluded.installation_id AND refunds.version < excluded.version",
        &[&till.mch_id, &till.installation_id, &nos, &trade_nos, &fees, &reasons, &created, &states, &finished, &refund_ids, &errs, &messages, &versions],
    )
    .await
    .map(drop)
}

/// The SHA-256 of everything the store keeps of an event, each field
/// length-prefixed so no two different events encode alike.
fn payload_hash(e: &ShipEvent) -> Vec<u8> {
    let mut h = Sha256::new();
    let text = |h: &mut Sha256, s: Option<&str>| match s {
        None => h.update([0u8]),
        Some(s) => {
            h.update([1u8]);
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
    };
    let number = |h: &mut Sha256, n: Option<i64>| match n {
        None => h.update([0u8]),
        Some(n) => {
            h.update([1u8]);
            h.update(n.to_le_bytes());
        }
    };
    number(&mut h, Some(e.id));
    number(&mut h, Some(e.order_id));
    text(&mut h, Some(&e.out_trade_no));
    number(&mut h, Some(e.at_ms));
    number(&mut h, e.since_t0_ms);
    text(&mut h, Some(&e.kind));
    text(&mut h, e.call.as_deref());
    text(&mut h, Some(&e.summary));
    text(&mut h, Some(&e.detail));
    h.finalize().to_vec()
}

/// A database error on `target` (no password in it), with its causes.
fn failed(target: &str, e: &tokio_postgres::Error) -> StoreError {
    StoreError::Database {
        target: target.into(),
        cause: cause(e),
    }
}

/// The database's own words, with its SQLSTATE when it gave one.
fn cause(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}

/// Ships everything the journal has after the marks, batch by batch, until
/// the store has it all. `reader` is a read-only journal (reports never wait
/// behind the writer, nor the writer behind this); the journal's mark is
/// written through `writer` after each store commit.
///
/// Starts from the lower of the journal's mark and the store's, so a store
/// restored from an older backup is filled in again.
pub async fn ship_all(
    store: &mut Store,
    reader: &Arc<Mutex<Journal>>,
    writer: &JournalWriter,
    till: &Till,
    batch_events: usize,
) -> Result<Report, StoreError> {
    if till.installation_id.is_empty() {
        // Under an empty id every till of the store would be one installation.
        return Err(StoreError::NoInstallation {
            till_id: till.till_id.clone(),
        });
    }
    let local = read(reader, |j| j.shipped_through()).await?;
    let mut mark = store.mark(&till.installation_id).await?;
    let mut after = local.min(mark);
    let mut shipped = 0u64;
    loop {
        let batch = read(reader, move |j| j.ship_batch(after, batch_events)).await?;
        let Some(through) = batch.through() else {
            break;
        };
        mark = store.ship(till, &batch, through).await?;
        writer.run(move |j| j.mark_shipped(through)).await?;
        crate::fault::hit(crate::fault::Point::StoreShipped);
        shipped += batch.events.len() as u64;
        after = through;
    }
    let behind = read(reader, move |j| j.events_after(mark)).await?;
    Ok(Report {
        shipped,
        through: mark,
        behind,
    })
}

/// Runs a read on the read-only journal off the async workers.
pub(crate) async fn read<T: Send + 'static>(
    reader: &Arc<Mutex<Journal>>,
    job: impl FnOnce(&Journal) -> Result<T, JournalError> + Send + 'static,
) -> Result<T, JournalError> {
    let reader = Arc::clone(reader);
    tokio::task::spawn_blocking(move || {
        let journal = reader.lock().unwrap_or_else(|e| e.into_inner());
        job(&journal)
    })
    .await
    .unwrap_or(Err(JournalError::WriterGone))
}

/// Connects and ships everything once: `scanpay sync`. (The till's background
/// shipping keeps its connection and calls [`ship_all`] each round.)
pub async fn sync(
    settings: &StoreSettings,
    reader: &Arc<Mutex<Journal>>,
    writer: &JournalWriter,
    till: &Till,
) -> Result<Report, StoreError> {
    let mut store = Store::connect(settings).await?;
    ship_all(
        &mut store,
        reader,
        writer,
        till,
        settings.batch_events as usize,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_machine_and_no_password_in_the_url() {
        assert!(check_url("postgres://scanpay@127.0.0.1:5432/store").is_ok());
        assert!(check_url("postgres://scanpay@localhost/store").is_ok());
        assert!(check_url("postgres://scanpay@[::1]:5432/store").is_ok());
        assert!(check_url("postgres://scanpay@%2Frun%2Fpostgresql/store").is_ok());
        let far = check_url("postgres://scanpay@db.example.com/store").unwrap_err();
        assert!(far.contains("not this machine"), "{far}");
        let secret = check_url("postgres://scanpay:hunter2@127.0.0.1/store").unwrap_err();
        assert!(secret.contains("holds a password"), "{secret}");
        assert!(!secret.contains("hunter2"));
        assert!(check_url("postgres://127.0.0.1/store").is_err());
        assert!(check_url("mysql://x@127.0.0.1/store").is_err());
    }

    #[test]
    fn the_hash_sees_every_field() {
        let e = ShipEvent {
            id: 1,
            order_id: 1,
            out_trade_no: "T01".into(),
            at_ms: 5,
            since_t0_ms: None,
            kind: "note".into(),
            call: None,
            summary: "a".into(),
            detail: "{}".into(),
        };
        let base = payload_hash(&e);
        let mut other = e.clone();
        other.summary = "b".into();
        assert_ne!(payload_hash(&other), base);
        let mut other = e.clone();
        other.since_t0_ms = Some(0);
        assert_ne!(payload_hash(&other), base);
        let mut other = e;
        other.call = Some(String::new());
        assert_ne!(payload_hash(&other), base);
    }
}
