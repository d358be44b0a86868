//! Full-text search of people (handle, name), rooms (title) and events (title,
//! description) behind one API: SQLite FTS5 tables kept by triggers, or PostgreSQL
//! `tsvector` expression indexes (GIN). Both are created at start-up (they are not portable
//! SQL, so they are not in the shared migrations) and filled from the tables the first time.

use super::{summary, Result, Store};
use ruang_proto::{RoomId, UserSummary};
use sqlx::{AnyPool, Row};

/// What matched, best first within each kind.
#[derive(Debug, Default)]
pub struct SearchHits {
    pub people: Vec<UserSummary>,
    /// Rooms not ended.
    pub rooms: Vec<RoomId>,
    /// Events not cancelled.
    pub events: Vec<String>,
}

/// Words of a query: letters and digits, at most 8 words of at most 40 characters,
/// lowercased. Everything else separates words (as both databases' tokenizers do), so no
/// query syntax ever reaches the database.
pub fn words(q: &str) -> Vec<String> {
    q.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(8)
        .map(|w| w.chars().take(40).collect::<String>().to_lowercase())
        .collect()
}

/// FTS5 query: every word as a prefix (`"jaz"* "nig"*`, all must match).
fn fts5_query(words: &[String]) -> String {
    words
        .iter()
        .map(|w| format!("\"{w}\"*"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// PostgreSQL tsquery: `jaz:* & nig:*`.
fn pg_query(words: &[String]) -> String {
    words
        .iter()
        .map(|w| format!("{w}:*"))
        .collect::<Vec<_>>()
        .join(" & ")
}

const SQLITE_SETUP: &[(&str, &[&str], &str)] = &[
    (
        "users_fts",
        &[
            "CREATE VIRTUAL TABLE users_fts USING fts5(id UNINDEXED, handle, name, tokenize = 'unicode61 remove_diacritics 2')",
            "CREATE TRIGGER IF NOT EXISTS users_fts_ai AFTER INSERT ON users BEGIN
                 INSERT INTO users_fts (id, handle, name) VALUES (new.id, new.handle, new.name); END",
            "CREATE TRIGGER IF NOT EXISTS users_fts_au AFTER UPDATE OF handle, name ON users BEGIN
                 DELETE FROM users_fts WHERE id = old.id;
                 INSERT INTO users_fts (id, handle, name) VALUES (new.id, new.handle, new.name); END",
        ],
        "INSERT INTO users_fts (id, handle, name) SELECT id, handle, name FROM users",
    ),
    (
        "rooms_fts",
        &[
            "CREATE VIRTUAL TABLE rooms_fts USING fts5(id UNINDEXED, title, tokenize = 'unicode61 remove_diacritics 2')",
            "CREATE TRIGGER IF NOT EXISTS rooms_fts_ai AFTER INSERT ON rooms BEGIN
                 INSERT INTO rooms_fts (id, title) VALUES (new.id, new.title); END",
            "CREATE TRIGGER IF NOT EXISTS rooms_fts_au AFTER UPDATE OF title ON rooms BEGIN
                 DELETE FROM rooms_fts WHERE id = old.id;
                 INSERT INTO rooms_fts (id, title) VALUES (new.id, new.title); END",
        ],
        "INSERT INTO rooms_fts (id, title) SELECT id, title FROM rooms",
    ),
    (
        "events_fts",
        &[
            "CREATE VIRTUAL TABLE events_fts USING fts5(id UNINDEXED, title, description, tokenize = 'unicode61 remove_diacritics 2')",
            "CREATE TRIGGER IF NOT EXISTS events_fts_ai AFTER INSERT ON events BEGIN
                 INSERT INTO events_fts (id, title, description) VALUES (new.id, new.title, new.description); END",
            "CREATE TRIGGER IF NOT EXISTS events_fts_au AFTER UPDATE OF title, description ON events BEGIN
                 DELETE FROM events_fts WHERE id = old.id;
                 INSERT INTO events_fts (id, title, description) VALUES (new.id, new.title, new.description); END",
        ],
        "INSERT INTO events_fts (id, title, description) SELECT id, title, description FROM events",
    ),
];

/// The indexed expressions; queries repeat them exactly so the GIN indexes are used.
const PG_USERS: &str = "to_tsvector('simple', u.handle || ' ' || u.name)";
const PG_ROOMS: &str = "to_tsvector('simple', r.title)";
const PG_EVENTS: &str = "to_tsvector('simple', e.title || ' ' || e.description)";

/// Creates the search tables or indexes if missing (idempotent; run at every start).
pub(super) async fn prepare(pool: &AnyPool, is_sqlite: bool) -> Result<()> {
    if is_sqlite {
        for (table, create, fill) in SQLITE_SETUP {
            let exists = sqlx::query("SELECT 1 AS one FROM sqlite_master WHERE name = $1")
                .bind(*table)
                .fetch_optional(pool)
                .await?
                .is_some();
            let mut tx = pool.begin().await?;
            if !exists {
                sqlx::query(create[0]).execute(&mut *tx).await?;
            }
            for sql in &create[1..] {
                sqlx::query(sql).execute(&mut *tx).await?;
            }
            if !exists {
                sqlx::query(fill).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }
    } else {
        for sql in [
            "CREATE INDEX IF NOT EXISTS users_search ON users USING GIN (to_tsvector('simple', handle || ' ' || name))",
            "CREATE INDEX IF NOT EXISTS rooms_search ON rooms USING GIN (to_tsvector('simple', title))",
            "CREATE INDEX IF NOT EXISTS events_search ON events USING GIN (to_tsvector('simple', title || ' ' || description))",
        ] {
            sqlx::query(sql).execute(pool).await?;
        }
    }
    Ok(())
}

impl Store {
    /// People, rooms and events matching every word of `q` as a prefix, by text rank.
    pub async fn search(&self, q: &str, limit: usize) -> Result<SearchHits> {
        let words = words(q);
        if words.is_empty() {
            return Ok(SearchHits::default());
        }
        let limit = limit as i64;
        let (people_sql, rooms_sql, events_sql, query) = if self.is_sqlite {
            (
                "SELECT u.id AS id, u.handle AS handle, u.name AS name, u.avatar AS avatar
                 FROM users_fts f JOIN users u ON u.id = f.id
                 WHERE users_fts MATCH $1 ORDER BY bm25(users_fts), u.handle LIMIT $2"
                    .to_owned(),
                "SELECT r.id AS id FROM rooms_fts f JOIN rooms r ON r.id = f.id
                 WHERE rooms_fts MATCH $1 AND r.ended_at IS NULL
                 ORDER BY bm25(rooms_fts), r.created_at DESC LIMIT $2"
                    .to_owned(),
                "SELECT e.id AS id FROM events_fts f JOIN events e ON e.id = f.id
                 WHERE events_fts MATCH $1 AND e.cancelled_at IS NULL
                 ORDER BY bm25(events_fts), e.starts_at LIMIT $2"
                    .to_owned(),
                fts5_query(&words),
            )
        } else {
            (
                format!(
                    "SELECT u.id AS id, u.handle AS handle, u.name AS name, u.avatar AS avatar
                     FROM users u WHERE {PG_USERS} @@ to_tsquery('simple', $1)
                     ORDER BY ts_rank({PG_USERS}, to_tsquery('simple', $1)) DESC, u.handle LIMIT $2"
                ),
                format!(
                    "SELECT r.id AS id FROM rooms r
                     WHERE {PG_ROOMS} @@ to_tsquery('simple', $1) AND r.ended_at IS NULL
                     ORDER BY ts_rank({PG_ROOMS}, to_tsquery('simple', $1)) DESC, r.created_at DESC LIMIT $2"
                ),
                format!(
                    "SELECT e.id AS id FROM events e
                     WHERE {PG_EVENTS} @@ to_tsquery('simple', $1) AND e.cancelled_at IS NULL
                     ORDER BY ts_rank({PG_EVENTS}, to_tsquery('simple', $1)) DESC, e.starts_at LIMIT $2"
                ),
                pg_query(&words),
            )
        };
        let people = sqlx::query(&people_sql)
            .bind(&query)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| summary(r, ""))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let rooms = sqlx::query(&rooms_sql)
            .bind(&query)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get("id").map(RoomId))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let events = sqlx::query(&events_sql)
            .bind(&query)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(SearchHits {
            people,
            rooms,
            events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_carry_only_words() {
        assert_eq!(
            words("  Jazz-night\"* OR NEAR(x) "),
            ["jazz", "night", "or", "near", "x"]
        );
        assert_eq!(fts5_query(&words("maya_sari")), "\"maya\"* \"sari\"*");
        assert_eq!(pg_query(&words("Kopi & teh:*")), "kopi:* & teh:*");
        assert!(words("!!! ---").is_empty());
        assert_eq!(words("a b c d e f g h i j").len(), 8);
        assert_eq!(words("Ñoño 王").len(), 2);
    }
}
