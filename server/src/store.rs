//! The inspection store: devices with their tokens, and every inspection result, in SQLite.
//!
//! One file (`--db`), write-ahead logged so a crash loses no committed row; every write is
//! its own transaction. Tokens are 32 random bytes shown once at registration and stored only
//! as their SHA-256.

use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// A registered device.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Device {
    /// Its name, unique.
    pub name: String,
    /// Registration time, Unix seconds.
    pub created: f64,
    /// Whether its token was revoked.
    pub revoked: bool,
}

/// Milliseconds an edge reported for one frame.
#[derive(Clone, Copy, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct EdgeTimes {
    /// Conversion and resize to 224x224.
    pub resize_ms: Option<f64>,
    /// Edge-model inference.
    pub extract_ms: Option<f64>,
    /// Encoder and envelope.
    pub encode_ms: Option<f64>,
    /// Upload of the previous payload, as the edge measured it.
    pub tx_ms: Option<f64>,
}

/// Milliseconds the server spent on one payload.
#[derive(Clone, Copy, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct ServerTimes {
    /// Envelope checks and body decoding.
    pub decode_ms: f64,
    /// Server backbone (image scenarios).
    pub extract_ms: f64,
    /// PatchCore: embedding, search, score, map.
    pub score_ms: f64,
    /// Everything from receiving the body to the response.
    pub total_ms: f64,
}

/// One inspection.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Inspection {
    /// Row id (0 before it is stored).
    pub id: i64,
    /// When the server received it, Unix seconds.
    pub time: f64,
    /// The device's name.
    pub device: String,
    /// Scenario name.
    pub scenario: String,
    /// Edge crate or component version from the payload.
    pub edge_version: String,
    /// Frame number from the payload.
    pub sequence: u32,
    /// Payload bytes.
    pub payload_bytes: usize,
    /// What the edge reported.
    pub edge: EdgeTimes,
    /// What the server measured.
    pub server: ServerTimes,
    /// Image score.
    pub score: f32,
    /// Threshold it was judged against.
    pub threshold: f32,
    /// `defective` or `good`.
    pub verdict: String,
}

/// Percentiles of one quantity over a device's inspections.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct Spread {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Spread {
        if values.is_empty() {
            return Spread::default();
        }
        values.sort_by(f64::total_cmp);
        let at =
            |q: f64| values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
        Spread { p50: at(0.5), p90: at(0.9), p99: at(0.99) }
    }
}

/// One device in the fleet view.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DeviceStats {
    /// The device.
    pub device: Device,
    /// Inspections stored.
    pub inspections: usize,
    /// Defective verdicts.
    pub defective: usize,
    /// Edge time (resize + extract + encode) as the device reported it.
    pub edge_ms: Spread,
    /// Payload bytes.
    pub payload_bytes: Spread,
    /// Server time per payload.
    pub server_ms: Spread,
    /// Versions it ran, in order of first use.
    pub versions: Vec<String>,
    /// The latest inspections, oldest first, for plotting: `[time, edge ms, server ms, bytes]`.
    pub series: Vec<[f64; 4]>,
}

/// The store.
pub struct Store {
    conn: Mutex<Connection>,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn token_hash(token: &str) -> String {
    crate::backbones::sha256_hex(token.as_bytes())
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS devices (
    name TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS inspections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    device TEXT NOT NULL REFERENCES devices(name),
    scenario TEXT NOT NULL,
    edge_version TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    payload_bytes INTEGER NOT NULL,
    edge_resize_ms REAL,
    edge_extract_ms REAL,
    edge_encode_ms REAL,
    edge_tx_ms REAL,
    server_decode_ms REAL NOT NULL,
    server_extract_ms REAL NOT NULL,
    server_score_ms REAL NOT NULL,
    server_total_ms REAL NOT NULL,
    score REAL NOT NULL,
    threshold REAL NOT NULL,
    verdict TEXT NOT NULL,
    map_png BLOB
);
CREATE INDEX IF NOT EXISTS inspections_by_device ON inspections(device, id);
";

fn inspection(row: &rusqlite::Row<'_>) -> rusqlite::Result<Inspection> {
    Ok(Inspection {
        id: row.get(0)?,
        time: row.get(1)?,
        device: row.get(2)?,
        scenario: row.get(3)?,
        edge_version: row.get(4)?,
        sequence: row.get(5)?,
        payload_bytes: row.get::<_, i64>(6)? as usize,
        edge: EdgeTimes {
            resize_ms: row.get(7)?,
            extract_ms: row.get(8)?,
            encode_ms: row.get(9)?,
            tx_ms: row.get(10)?,
        },
        server: ServerTimes {
            decode_ms: row.get(11)?,
            extract_ms: row.get(12)?,
            score_ms: row.get(13)?,
            total_ms: row.get(14)?,
        },
        score: row.get::<_, f64>(15)? as f32,
        threshold: row.get::<_, f64>(16)? as f32,
        verdict: row.get(17)?,
    })
}

const COLUMNS: &str = "id, time, device, scenario, edge_version, sequence, payload_bytes, edge_resize_ms, \
    edge_extract_ms, edge_encode_ms, edge_tx_ms, server_decode_ms, server_extract_ms, server_score_ms, \
    server_total_ms, score, threshold, verdict";

impl Store {
    /// Opens (or creates) the store at `path`.
    ///
    /// # Errors
    /// A file that cannot be opened or is not a SQLite database.
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)
            .with_context(|| format!("opening the store {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .context("the store is not a SQLite database")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("creating the tables in {}", path.display()))?;
        Ok(Store { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (every write is a
        // transaction), so a poisoned lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a device, or gives an existing one a new token (the old one stops working).
    /// Returns the token, which is not stored and cannot be shown again.
    ///
    /// # Errors
    /// An empty or over-long name, or a database error.
    pub fn register(&self, name: &str) -> Result<String> {
        if name.is_empty()
            || name.len() > 64
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            bail!("device name {name:?} must be 1-64 letters, digits, '-', '_' or '.'");
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| anyhow::anyhow!("no randomness for a token: {e}"))?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.conn().execute(
            "INSERT INTO devices (name, token_sha256, created, revoked) VALUES (?1, ?2, ?3, 0)
             ON CONFLICT(name) DO UPDATE SET token_sha256 = excluded.token_sha256, revoked = 0",
            params![name, token_hash(&token), now()],
        )?;
        Ok(token)
    }

    /// Revokes a device's token. Returns whether the device exists.
    ///
    /// # Errors
    /// A database error.
    pub fn revoke(&self, name: &str) -> Result<bool> {
        Ok(self.conn().execute("UPDATE devices SET revoked = 1 WHERE name = ?1", params![name])?
            == 1)
    }

    /// The device a token belongs to, if it is valid and not revoked.
    ///
    /// # Errors
    /// A database error.
    pub fn authenticate(&self, token: &str) -> Result<Option<Device>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT name, created, revoked FROM devices WHERE token_sha256 = ?1 AND revoked = 0",
                params![token_hash(token)],
                |r| Ok(Device { name: r.get(0)?, created: r.get(1)?, revoked: r.get::<_, i64>(2)? != 0 }),
            )
            .optional()?)
    }

    /// Every device.
    ///
    /// # Errors
    /// A database error.
    pub fn devices(&self) -> Result<Vec<Device>> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT name, created, revoked FROM devices ORDER BY name")?;
        let rows = st.query_map([], |r| {
            Ok(Device { name: r.get(0)?, created: r.get(1)?, revoked: r.get::<_, i64>(2)? != 0 })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Stores an inspection and its heatmap; returns its id.
    ///
    /// # Errors
    /// A database error (for example an unknown device).
    pub fn insert(&self, i: &Inspection, map_png: &[u8]) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO inspections (time, device, scenario, edge_version, sequence, payload_bytes,
                edge_resize_ms, edge_extract_ms, edge_encode_ms, edge_tx_ms, server_decode_ms,
                server_extract_ms, server_score_ms, server_total_ms, score, threshold, verdict, map_png)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
            params![
                i.time,
                i.device,
                i.scenario,
                i.edge_version,
                i.sequence,
                i.payload_bytes as i64,
                i.edge.resize_ms,
                i.edge.extract_ms,
                i.edge.encode_ms,
                i.edge.tx_ms,
                i.server.decode_ms,
                i.server.extract_ms,
                i.server.score_ms,
                i.server.total_ms,
                f64::from(i.score),
                f64::from(i.threshold),
                i.verdict,
                map_png,
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// The latest inspections, newest first, of one device or all.
    ///
    /// # Errors
    /// A database error.
    pub fn recent(&self, device: Option<&str>, limit: usize) -> Result<Vec<Inspection>> {
        let conn = self.conn();
        let limit = limit.min(10_000) as i64;
        let rows = match device {
            Some(d) => {
                let mut st = conn.prepare(&format!(
                    "SELECT {COLUMNS} FROM inspections WHERE device = ?1 ORDER BY id DESC LIMIT ?2"
                ))?;
                st.query_map(params![d, limit], inspection)?
                    .collect::<rusqlite::Result<Vec<_>>>()?
            }
            None => {
                let mut st = conn.prepare(&format!(
                    "SELECT {COLUMNS} FROM inspections ORDER BY id DESC LIMIT ?1"
                ))?;
                st.query_map(params![limit], inspection)?.collect::<rusqlite::Result<Vec<_>>>()?
            }
        };
        Ok(rows)
    }

    /// An inspection's heatmap PNG.
    ///
    /// # Errors
    /// A database error.
    pub fn map_png(&self, id: i64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn()
            .query_row("SELECT map_png FROM inspections WHERE id = ?1", params![id], |r| {
                r.get::<_, Option<Vec<u8>>>(0)
            })
            .optional()?
            .flatten())
    }

    /// Inspections stored.
    ///
    /// # Errors
    /// A database error.
    pub fn count(&self) -> Result<usize> {
        Ok(self.conn().query_row("SELECT COUNT(*) FROM inspections", [], |r| r.get::<_, i64>(0))?
            as usize)
    }

    /// Per-device edge-time, payload and server-time percentiles over each device's latest
    /// `window` inspections, with the series for plots.
    ///
    /// # Errors
    /// A database error.
    pub fn fleet(&self, window: usize) -> Result<Vec<DeviceStats>> {
        let mut out = Vec::new();
        for device in self.devices()? {
            let mut rows = self.recent(Some(&device.name), window)?;
            rows.reverse();
            let edge = |i: &Inspection| {
                let e = &i.edge;
                e.resize_ms.unwrap_or(0.0)
                    + e.extract_ms.unwrap_or(0.0)
                    + e.encode_ms.unwrap_or(0.0)
            };
            let mut versions: Vec<String> = Vec::new();
            for r in &rows {
                if !versions.contains(&r.edge_version) {
                    versions.push(r.edge_version.clone());
                }
            }
            out.push(DeviceStats {
                inspections: rows.len(),
                defective: rows.iter().filter(|r| r.verdict == "defective").count(),
                edge_ms: Spread::of(rows.iter().map(edge).collect()),
                payload_bytes: Spread::of(rows.iter().map(|r| r.payload_bytes as f64).collect()),
                server_ms: Spread::of(rows.iter().map(|r| r.server.total_ms).collect()),
                versions,
                series: rows
                    .iter()
                    .map(|r| [r.time, edge(r), r.server.total_ms, r.payload_bytes as f64])
                    .collect(),
                device,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(device: &str, n: u32) -> Inspection {
        Inspection {
            id: 0,
            time: 1000.0 + f64::from(n),
            device: device.into(),
            scenario: "features".into(),
            edge_version: "patchwire-edge 0.1.0".into(),
            sequence: n,
            payload_bytes: 1000 + n as usize,
            edge: EdgeTimes {
                resize_ms: Some(1.0),
                extract_ms: Some(f64::from(n)),
                encode_ms: Some(0.5),
                tx_ms: None,
            },
            server: ServerTimes { decode_ms: 0.1, extract_ms: 0.0, score_ms: 50.0, total_ms: 51.0 },
            score: 1.5,
            threshold: 2.0,
            verdict: "good".into(),
        }
    }

    #[test]
    fn tokens_authenticate_until_revoked_and_rows_survive_a_reopen() {
        let dir = std::env::temp_dir().join(format!("pw-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sqlite");
        let store = Store::open(&path).unwrap();
        let token = store.register("cam-1").unwrap();
        assert_eq!(store.authenticate(&token).unwrap().unwrap().name, "cam-1");
        assert!(store.authenticate("not a token").unwrap().is_none());
        for n in 0..10 {
            store.insert(&sample("cam-1", n), b"png").unwrap();
        }
        // An unknown device cannot have rows.
        assert!(store.insert(&sample("ghost", 1), b"").is_err());
        assert!(store.revoke("cam-1").unwrap());
        assert!(store.authenticate(&token).unwrap().is_none());
        assert!(!store.revoke("nobody").unwrap());
        drop(store);

        let store = Store::open(&path).unwrap();
        assert_eq!(store.count().unwrap(), 10);
        let recent = store.recent(Some("cam-1"), 3).unwrap();
        assert_eq!(recent.iter().map(|r| r.sequence).collect::<Vec<_>>(), [9, 8, 7]);
        assert_eq!(store.map_png(recent[0].id).unwrap().unwrap(), b"png");
        let fleet = store.fleet(100).unwrap();
        assert_eq!(fleet[0].inspections, 10);
        assert_eq!(fleet[0].edge_ms.p50, 1.5 + 5.0 - 1.0);
        assert!(store.register("bad name!").is_err());
        // Re-registering issues a new token and re-enables the device.
        let again = store.register("cam-1").unwrap();
        assert_ne!(again, token);
        assert!(store.authenticate(&again).unwrap().is_some());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused() {
        let path = std::env::temp_dir().join(format!("pw-notdb-{}.sqlite", std::process::id()));
        std::fs::write(&path, b"this is not sqlite at all, just some text that is long enough")
            .unwrap();
        assert!(Store::open(&path).is_err());
        std::fs::remove_file(path).ok();
    }
}
