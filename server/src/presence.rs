//! Presence: which devices (tabs) have a workspace open right now, and in which note. Ephemeral
//! by design — kept in each process's memory, never in the database. A device sends a heartbeat
//! (`PUT /v1/workspaces/{id}/presence`) every few seconds; the heartbeat is shared with every
//! process through the store (Postgres `NOTIFY`), each process keeps the list, forgets a device
//! [`PRESENCE_TTL_SECS`] after its last heartbeat, and tells the workspace's live streams whenever
//! the list changes. Any member — read-only too — may be present; a workspace shows at most
//! [`PRESENCE_MAX`] devices.

use serde::{Deserialize, Serialize};
use shared_schema::api::{Peer, PRESENCE_MAX, PRESENCE_TTL_SECS};
use shared_schema::Role;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// A heartbeat as shared between processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Workspace.
    pub ws: String,
    /// The device and what it has open.
    pub peer: Peer,
}

/// One workspace's list: device id → (what it has open, last heartbeat).
type List = BTreeMap<String, (Peer, Instant)>;

/// The presence lists of this process.
pub struct Presence {
    lists: Mutex<HashMap<String, List>>,
    changes: broadcast::Sender<String>,
    ttl: Duration,
}

impl Presence {
    /// Empty lists; devices expire after `ttl`.
    pub fn new(ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            lists: Mutex::new(HashMap::new()),
            changes: broadcast::channel(1024).0,
            ttl,
        })
    }

    /// With the protocol's time to live.
    pub fn standard() -> Arc<Self> {
        Self::new(Duration::from_secs(PRESENCE_TTL_SECS))
    }

    /// Whether a heartbeat of `device` would fit `ws`'s list (already there, or room left).
    pub fn has_room(&self, ws: &str, device: &str) -> bool {
        let Ok(lists) = self.lists.lock() else {
            return false;
        };
        lists
            .get(ws)
            .is_none_or(|l| l.contains_key(device) || l.len() < PRESENCE_MAX)
    }

    /// Applies a heartbeat; the workspace's streams hear of it if the list changed.
    pub fn apply(&self, beat: Heartbeat) {
        let changed = {
            let Ok(mut lists) = self.lists.lock() else {
                return;
            };
            let list = lists.entry(beat.ws.clone()).or_default();
            if !list.contains_key(&beat.peer.device) && list.len() >= PRESENCE_MAX {
                return;
            }
            let before = list.get(&beat.peer.device).map(|(p, _)| p.clone());
            list.insert(
                beat.peer.device.clone(),
                (beat.peer.clone(), Instant::now()),
            );
            before.as_ref() != Some(&beat.peer)
        };
        if changed {
            let _ = self.changes.send(beat.ws);
        }
    }

    /// Forgets devices whose last heartbeat is older than the time to live.
    pub fn sweep(&self) {
        let mut changed = Vec::new();
        if let Ok(mut lists) = self.lists.lock() {
            lists.retain(|ws, list| {
                let before = list.len();
                list.retain(|_, (_, seen)| seen.elapsed() < self.ttl);
                if list.len() != before {
                    changed.push(ws.clone());
                }
                !list.is_empty()
            });
        }
        for ws in changed {
            let _ = self.changes.send(ws);
        }
    }

    /// Who is present in `ws`, by device id.
    pub fn list(&self, ws: &str) -> Vec<Peer> {
        self.lists
            .lock()
            .ok()
            .and_then(|l| {
                l.get(ws)
                    .map(|l| l.values().map(|(p, _)| p.clone()).collect())
            })
            .unwrap_or_default()
    }

    /// Workspaces whose list changed, as they change.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }
}

/// Runs for the life of the server: applies heartbeats from every process and sweeps once a
/// second.
pub async fn run(presence: Arc<Presence>, mut beats: broadcast::Receiver<String>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            beat = beats.recv() => match beat {
                Ok(json) => {
                    if let Ok(beat) = serde_json::from_str::<Heartbeat>(&json) {
                        presence.apply(beat);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => presence.sweep(),
        }
    }
}

/// A heartbeat of `device` in `ws` with `role`, open at `note`.
pub fn heartbeat(ws: &str, device: &str, role: Role, note: Option<String>) -> Heartbeat {
    Heartbeat {
        ws: ws.to_owned(),
        peer: Peer {
            device: device.to_owned(),
            role,
            note,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_appears_moves_and_expires_and_each_change_is_announced() {
        let p = Presence::new(Duration::from_millis(50));
        let mut changes = p.subscribe();
        p.apply(heartbeat("w", "d1", Role::Read, None));
        assert_eq!(changes.try_recv().ok().as_deref(), Some("w"));
        p.apply(heartbeat("w", "d1", Role::Read, None));
        assert!(
            changes.try_recv().is_err(),
            "a repeated heartbeat changes nothing"
        );
        p.apply(heartbeat("w", "d1", Role::Read, Some("n1".into())));
        assert_eq!(changes.try_recv().ok().as_deref(), Some("w"));
        assert_eq!(p.list("w")[0].note.as_deref(), Some("n1"));
        std::thread::sleep(Duration::from_millis(80));
        p.sweep();
        assert!(p.list("w").is_empty());
        assert_eq!(changes.try_recv().ok().as_deref(), Some("w"));
    }

    #[test]
    fn a_workspace_shows_at_most_the_cap() {
        let p = Presence::standard();
        for i in 0..PRESENCE_MAX + 5 {
            if p.has_room("w", &format!("d{i}")) {
                p.apply(heartbeat("w", &format!("d{i}"), Role::Write, None));
            }
        }
        assert_eq!(p.list("w").len(), PRESENCE_MAX);
        assert!(p.has_room("w", "d0"), "a present device keeps beating");
        assert!(!p.has_room("w", "new"));
    }
}
