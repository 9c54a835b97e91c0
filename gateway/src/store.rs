//! The embedded store: one SQLite file (rusqlite, bundled SQLite, WAL) under `store.path`.
//! Today it keeps quota counters, so a restart does not reset a day's quota; durable jobs
//! will live beside them. Operators can open the file with `sqlite3`.

use anyhow::Context;
use rusqlite::{params, Connection};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct EmbeddedStore {
    conn: Mutex<Connection>,
    pub path: PathBuf,
}

impl EmbeddedStore {
    /// Opens (or creates) `<dir>/propylon.db`. Blocking: call before serving or off the runtime.
    pub fn open(dir: &Path) -> anyhow::Result<EmbeddedStore> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the store folder {}", dir.display()))?;
        let path = dir.join("propylon.db");
        let conn =
            Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS quota_counters (
                 key TEXT PRIMARY KEY,
                 window_start INTEGER NOT NULL,
                 used INTEGER NOT NULL
             );",
        )?;
        Ok(EmbeddedStore {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// Every saved counter: (key, window start, used).
    pub fn load_quota_counters(&self) -> anyhow::Result<Vec<(String, u64, u64)>> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| anyhow::anyhow!("store lock poisoned"))?;
        let mut stmt = conn.prepare("SELECT key, window_start, used FROM quota_counters")?;
        let rows = stmt.query_map([], |row| {
            let start: i64 = row.get(1)?;
            let used: i64 = row.get(2)?;
            Ok((
                row.get::<_, String>(0)?,
                u64::try_from(start).unwrap_or(0),
                u64::try_from(used).unwrap_or(0),
            ))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Replaces the saved counters with `rows`, in one transaction.
    pub fn save_quota_counters(&self, rows: &[(String, u64, u64)]) -> anyhow::Result<()> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| anyhow::anyhow!("store lock poisoned"))?;
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM quota_counters", [])?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO quota_counters (key, window_start, used) VALUES (?1, ?2, ?3)",
            )?;
            for (key, start, used) in rows {
                insert.execute(params![
                    key,
                    i64::try_from(*start).unwrap_or(i64::MAX),
                    i64::try_from(*used).unwrap_or(i64::MAX)
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quota_counters_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store
            .save_quota_counters(&[("alice".into(), 1_764_028_800, 7)])
            .unwrap();
        drop(store);
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(
            store.load_quota_counters().unwrap(),
            vec![("alice".to_string(), 1_764_028_800, 7)]
        );
        store.save_quota_counters(&[]).unwrap();
        assert!(store.load_quota_counters().unwrap().is_empty());
    }
}
