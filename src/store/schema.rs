//! The store database's schema, versioned in `schema_version`.
//!
//! `MIGRATIONS[n]` takes the store from version `n` to `n + 1`. Steps are only
//! ever appended. Every till migrates at connect, under one advisory lock, so
//! ten tills starting at once apply each step once.

use tokio_postgres::Client;

/// The advisory lock the migrations are taken under ("SCPYSTOR").
const MIGRATION_LOCK: i64 = i64::from_be_bytes(*b"SCPYSTOR");

pub const MIGRATIONS: &[&str] = &[
    // 1: every till's events, its mark, and the store's orders and refunds.
    r#"
    CREATE TABLE tills (
        installation_id TEXT        PRIMARY KEY,
        till_id         TEXT        NOT NULL,
        mch_id          TEXT        NOT NULL,
        -- Every event of this installation with an id up to here is in `events`.
        shipped_through BIGINT      NOT NULL CHECK (shipped_through >= 0),
        shipped_at      TIMESTAMPTZ NOT NULL
    );

    CREATE TABLE events (
        installation_id TEXT   NOT NULL,
        event_id        BIGINT NOT NULL, -- the till journal's events.id
        order_id        BIGINT NOT NULL, -- the till journal's orders.id
        out_trade_no    TEXT   NOT NULL,
        at_ms           BIGINT NOT NULL, -- unix ms, UTC
        since_t0_ms     BIGINT,
        kind            TEXT   NOT NULL,
        call            TEXT,
        summary         TEXT   NOT NULL,
        detail          JSONB  NOT NULL,
        -- Of the event as the journal holds it: a re-sent event must match.
        payload_sha256  BYTEA  NOT NULL CHECK (length(payload_sha256) = 32),
        PRIMARY KEY (installation_id, event_id)
    );
    CREATE INDEX events_by_order ON events (out_trade_no);

    -- The latest state of every order of every till; `version` is the journal
    -- id of the order's latest event, so an older copy never overwrites.
    CREATE TABLE orders (
        mch_id              TEXT   NOT NULL,
        out_trade_no        TEXT   NOT NULL,
        installation_id     TEXT   NOT NULL,
        till_id             TEXT   NOT NULL,
        total_fee           BIGINT NOT NULL CHECK (total_fee > 0), -- fen
        body                TEXT   NOT NULL,
        auth_code_masked    TEXT   NOT NULL,
        created_at_ms       BIGINT NOT NULL,
        micropay_sent_at_ms BIGINT,
        state               TEXT   NOT NULL,
        finished_at_ms      BIGINT,
        transaction_id      TEXT,
        err_code            TEXT,
        message             TEXT,
        version             BIGINT NOT NULL,
        PRIMARY KEY (mch_id, out_trade_no)
    );
    CREATE INDEX orders_by_created ON orders (created_at_ms);
    CREATE INDEX orders_by_till ON orders (installation_id, created_at_ms);

    CREATE TABLE refunds (
        mch_id          TEXT   NOT NULL,
        out_refund_no   TEXT   NOT NULL,
        out_trade_no    TEXT   NOT NULL,
        installation_id TEXT   NOT NULL,
        refund_fee      BIGINT NOT NULL CHECK (refund_fee > 0), -- fen
        reason          TEXT,
        created_at_ms   BIGINT NOT NULL,
        state           TEXT   NOT NULL,
        finished_at_ms  BIGINT,
        refund_id       TEXT,
        err_code        TEXT,
        message         TEXT,
        version         BIGINT NOT NULL,
        PRIMARY KEY (mch_id, out_refund_no)
    );
    CREATE INDEX refunds_by_order ON refunds (mch_id, out_trade_no);
    "#,
    // 2: the store's own id of each order and refund, so the store's screen
    // and reports can point at one row whichever till it came from (each
    // journal numbers its rows from 1); refunds found by the day they opened.
    r#"
    ALTER TABLE orders ADD COLUMN id BIGINT GENERATED ALWAYS AS IDENTITY;
    ALTER TABLE orders ADD CONSTRAINT orders_id_unique UNIQUE (id);
    ALTER TABLE refunds ADD COLUMN id BIGINT GENERATED ALWAYS AS IDENTITY;
    ALTER TABLE refunds ADD CONSTRAINT refunds_id_unique UNIQUE (id);
    CREATE INDEX refunds_by_created ON refunds (created_at_ms);
    "#,
];

/// Applies the missing steps in one transaction; returns the version found
/// (a newer one than [`MIGRATIONS`] knows is left alone and reported).
pub(super) async fn migrate(client: &mut Client) -> Result<i32, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
             version   INTEGER NOT NULL
         );
         INSERT INTO schema_version (singleton, version) VALUES (TRUE, 0) ON CONFLICT DO NOTHING;",
    )
    .await?;
    let found: i32 = tx
        .query_one("SELECT version FROM schema_version", &[])
        .await?
        .get(0);
    let Ok(from) = usize::try_from(found) else {
        return Ok(found);
    };
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(from) {
        tx.batch_execute(sql).await?;
        let version = i32::try_from(step + 1).unwrap_or(i32::MAX);
        tx.execute("UPDATE schema_version SET version = $1", &[&version])
            .await?;
        tracing::info!(version, "store database schema migrated");
    }
    tx.commit().await?;
    Ok(found)
}
