//! Cluster mode: identical nodes that share PostgreSQL (the store) and Redis (live state).
//!
//! What lives in Redis, all of it soft state that a node rebuilds by itself:
//! - `ruang:nodes` (a set) and `ruang:node:{id}` (JSON [`NodeInfo`], expires
//!   [`NODE_TTL`] after the node's last heartbeat): membership, address and load.
//! - `ruang:room:{id}:owner` = `"{node}|{fence}"`, expiring [`LEASE_TTL`] after the owner's
//!   last renewal: which node runs the room's rules. The fencing token comes from the
//!   database (`rooms.owner_fence`, bumped at every takeover), so it only grows even if Redis
//!   is flushed, and a node's room writes land only while the row holds its token
//!   ([`crate::store::Store::apply_room_change`]).
//!
//! Node-to-node requests carry `x-ruang-node`, an HMAC over the request with the cluster
//! secret (kept in the shared database, so operators configure nothing more).

pub mod auth;

use crate::store::{now_ms, Store};
use anyhow::Context;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use ruang_proto::RoomId;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// A node missing heartbeats for this long is gone (its rooms' leases expire too).
pub const NODE_TTL: Duration = Duration::from_millis(3000);
/// A room's lease lasts this long after its owner's last renewal: the failover time's floor.
pub const LEASE_TTL: Duration = Duration::from_millis(2000);
/// How often the owner renews its leases and beats its heart.
pub const RENEW_EVERY: Duration = Duration::from_millis(500);
/// How often a node looks for live rooms nobody owns (their owner died) to take over.
pub const ADOPT_EVERY: Duration = Duration::from_millis(500);

/// `ruang serve --cluster …`.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `redis://HOST:PORT[/DB]`.
    pub redis_url: String,
    /// This node's name in the cluster (unique).
    pub node_id: String,
    /// Where the other nodes reach this node's HTTP server; `http://` + the bound address
    /// when absent (give it when binding 0.0.0.0).
    pub node_url: Option<String>,
}

/// One node as the others see it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeInfo {
    pub id: String,
    pub url: String,
    /// Live rooms this node owns.
    pub rooms: u32,
    /// Members connected to this node (room WebSockets, local or forwarded).
    pub connections: u64,
    /// WebRTC peers on this node's SFU.
    pub media_peers: i64,
    /// Stopping: takes no new rooms.
    pub draining: bool,
    pub started_at: i64,
    pub heartbeat_at: i64,
    /// Where the room's edges and owner exchange audio (UDP), see `sfu::cascade`.
    #[serde(default)]
    pub cascade: Option<String>,
}

impl NodeInfo {
    /// What placement compares: fewer is better.
    pub fn load(&self) -> u64 {
        self.connections + self.media_peers.max(0) as u64 + 50 * self.rooms as u64
    }
}

/// Which node owns a room, and with which fencing token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub node: String,
    pub fence: i64,
}

impl Owner {
    fn parse(value: &str) -> Option<Owner> {
        let (node, fence) = value.rsplit_once('|')?;
        Some(Owner {
            node: node.to_owned(),
            fence: fence.parse().ok()?,
        })
    }
}

/// Handle to this node's view of the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster(Arc<Inner>);

struct Inner {
    redis: ConnectionManager,
    /// For the pub/sub connection (a connection of its own).
    client: redis::Client,
    node_id: String,
    node_url: String,
    started_at: i64,
    secret: auth::NodeKey,
    /// Rooms this node holds the lease of, with their fencing tokens.
    leases: Mutex<HashMap<RoomId, i64>>,
    /// Rooms this node reserved and is taking (fence being read, state being loaded).
    acquiring: Mutex<HashSet<RoomId>>,
    draining: AtomicBool,
    /// Wakes the heartbeat when this node's rooms changed (placement sees it at once).
    changed: tokio::sync::Notify,
    /// This node's cascade address (set once the socket is bound).
    cascade: RwLock<Option<std::net::SocketAddr>>,
    /// Live rooms in the database as of the last adoption round (for "is it live?" answers
    /// about rooms other nodes own).
    seen_live: RwLock<HashSet<RoomId>>,
}

const NODES: &str = "ruang:nodes";
/// Bus channels: session revocations (JSON `Revocation`), failed attempts counted by the
/// rate limiters (`LIMITER NODE IP`), and new blocks (the blocker's user id: every node takes
/// the people they blocked out of the rooms it owns where the blocker moderates).
pub const REVOCATIONS: &str = "ruang:revocations";
pub const FAILURES: &str = "ruang:failures";
pub const BLOCKS: &str = "ruang:blocks";
/// A media file deleted through one node (`KIND NAME`): every node removes its copy.
pub const MEDIA_DELETED: &str = "ruang:media-deleted";

fn node_key(id: &str) -> String {
    format!("ruang:node:{id}")
}

fn owner_key(room: &RoomId) -> String {
    format!("ruang:room:{}:owner", room.as_str())
}

/// Sets KEYS[1] to ARGV[2] (for ARGV[3] ms) only while it is ARGV[1]: moves a reserved
/// lease to its fenced value.
const CONFIRM: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0";

/// Extends KEYS[1] by ARGV[2] ms only while it is still ARGV[1] (our own lease).
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0";

/// Deletes KEYS[1] only while it is still ARGV[1].
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

impl Cluster {
    /// Connects to Redis and reads (or makes) the cluster secret in the shared database.
    pub async fn connect(
        config: &ClusterConfig,
        bound: std::net::SocketAddr,
        store: &Store,
    ) -> anyhow::Result<Cluster> {
        if config.node_id.is_empty()
            || config.node_id.len() > 64
            || !config
                .node_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            anyhow::bail!(
                "--node-id must be 1 to 64 letters, digits, '-', '_' or '.', got {:?}",
                config.node_id
            );
        }
        let client = redis::Client::open(config.redis_url.as_str())
            .with_context(|| format!("reading the Redis URL {:?}", config.redis_url))?;
        let redis = tokio::time::timeout(
            Duration::from_secs(10),
            ConnectionManager::new(client.clone()),
        )
        .await
        .map_err(|_| anyhow::anyhow!("Redis at {} did not answer", config.redis_url))?
        .with_context(|| format!("connecting to Redis at {}", config.redis_url))?;
        let secret = auth::NodeKey::load(store).await?;
        Ok(Cluster(Arc::new(Inner {
            redis,
            client,
            node_id: config.node_id.clone(),
            node_url: config
                .node_url
                .clone()
                .unwrap_or_else(|| format!("http://{bound}"))
                .trim_end_matches('/')
                .to_owned(),
            started_at: now_ms(),
            secret,
            leases: Mutex::new(HashMap::new()),
            acquiring: Mutex::new(HashSet::new()),
            draining: AtomicBool::new(false),
            changed: tokio::sync::Notify::new(),
            cascade: RwLock::new(None),
            seen_live: RwLock::new(HashSet::new()),
        })))
    }

    pub fn node_id(&self) -> &str {
        &self.0.node_id
    }

    pub fn node_url(&self) -> &str {
        &self.0.node_url
    }

    pub fn key(&self) -> &auth::NodeKey {
        &self.0.secret
    }

    fn redis(&self) -> ConnectionManager {
        self.0.redis.clone()
    }

    fn leases(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, i64>> {
        self.0.leases.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn seen_live(&self, room: &RoomId) -> bool {
        self.0
            .seen_live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(room)
    }

    pub fn set_seen_live(&self, rooms: HashSet<RoomId>) {
        *self.0.seen_live.write().unwrap_or_else(|e| e.into_inner()) = rooms;
    }

    pub fn set_cascade_addr(&self, addr: std::net::SocketAddr) {
        *self.0.cascade.write().unwrap_or_else(|e| e.into_inner()) = Some(addr);
    }

    /// Resolves when this node's set of rooms changed since the last call.
    pub async fn rooms_changed(&self) {
        self.0.changed.notified().await
    }

    pub fn is_draining(&self) -> bool {
        self.0.draining.load(Ordering::Relaxed)
    }

    pub fn set_draining(&self) {
        self.0.draining.store(true, Ordering::Relaxed);
    }

    /// Publishes this node's record (address and load) for another [`NODE_TTL`].
    pub async fn heartbeat(&self, connections: u64, media_peers: i64) -> anyhow::Result<()> {
        let info = NodeInfo {
            id: self.0.node_id.clone(),
            url: self.0.node_url.clone(),
            rooms: self.leases().len() as u32,
            connections,
            media_peers,
            draining: self.is_draining(),
            started_at: self.0.started_at,
            heartbeat_at: now_ms(),
            cascade: self
                .0
                .cascade
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .map(|a| a.to_string()),
        };
        let json = serde_json::to_string(&info)?;
        let mut r = self.redis();
        redis::pipe()
            .set_options(
                node_key(&self.0.node_id),
                json,
                redis::SetOptions::default()
                    .with_expiration(redis::SetExpiry::PX(NODE_TTL.as_millis() as u64)),
            )
            .ignore()
            .sadd(NODES, &self.0.node_id)
            .ignore()
            .query_async::<()>(&mut r)
            .await?;
        Ok(())
    }

    /// Takes this node out of the membership at once (a drained node's last act).
    pub async fn leave(&self) -> anyhow::Result<()> {
        let mut r = self.redis();
        redis::pipe()
            .del(node_key(&self.0.node_id))
            .ignore()
            .srem(NODES, &self.0.node_id)
            .ignore()
            .query_async::<()>(&mut r)
            .await?;
        Ok(())
    }

    /// The nodes alive now (their heartbeat has not expired), this one included.
    pub async fn nodes(&self) -> anyhow::Result<Vec<NodeInfo>> {
        let mut r = self.redis();
        let mut ids: Vec<String> = r.smembers(NODES).await?;
        ids.sort();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|i| node_key(i)).collect();
        let values: Vec<Option<String>> = r.mget(&keys).await?;
        let mut out = Vec::new();
        for (id, v) in ids.iter().zip(values) {
            match v.and_then(|v| serde_json::from_str::<NodeInfo>(&v).ok()) {
                Some(info) => out.push(info),
                None => {
                    // Gone (expired): forget it. A node that comes back adds itself again.
                    let _: Result<i64, _> = r.srem(NODES, id).await;
                }
            }
        }
        Ok(out)
    }

    /// Publishes `payload` on the bus channel `channel` (every node's [`Cluster::follow`]).
    pub async fn publish(&self, channel: &str, payload: String) -> anyhow::Result<()> {
        let mut r = self.redis();
        let _: i64 = r.publish(channel, payload).await?;
        Ok(())
    }

    /// Calls `handle(channel, payload)` for every message published on `channels` (by any
    /// node, this one included), reconnecting to Redis as needed, until `stop`.
    pub async fn follow(
        &self,
        channels: &[&str],
        handle: impl Fn(&str, String),
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let session = async {
                let mut pubsub = self.0.client.get_async_pubsub().await?;
                for c in channels {
                    pubsub.subscribe(*c).await?;
                }
                let mut messages = pubsub.on_message();
                while let Some(m) = futures_util::StreamExt::next(&mut messages).await {
                    let payload: String = m.get_payload()?;
                    handle(m.get_channel_name(), payload);
                }
                Ok::<(), redis::RedisError>(())
            };
            tokio::select! {
                r = session => {
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "cluster bus lost; reconnecting");
                    }
                }
                _ = stop.changed() => return,
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// One live node's record.
    pub async fn node(&self, id: &str) -> anyhow::Result<Option<NodeInfo>> {
        let mut r = self.redis();
        let v: Option<String> = r.get(node_key(id)).await?;
        Ok(v.and_then(|v| serde_json::from_str(&v).ok()))
    }

    /// Who owns `room` now (None: nobody; the room ended or its owner died).
    pub async fn owner(&self, room: &RoomId) -> anyhow::Result<Option<Owner>> {
        let mut r = self.redis();
        let v: Option<String> = r.get(owner_key(room)).await?;
        Ok(v.as_deref().and_then(Owner::parse))
    }

    /// Whether this node holds `room`'s lease or is taking it right now (its state may not
    /// be loaded yet).
    pub fn holds_or_acquiring(&self, room: &RoomId) -> bool {
        self.holds(room)
            || self
                .0
                .acquiring
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(room)
    }

    /// Whether this node is taking `room` right now (reserved or leased, state not loaded).
    pub fn is_acquiring(&self, room: &RoomId) -> bool {
        self.0
            .acquiring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(room)
    }

    /// Marks the end of taking `room` (loaded, or given up).
    pub fn acquired(&self, room: &RoomId) {
        self.0
            .acquiring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(room);
    }

    /// Reserves `room`'s lease for this node if nobody holds it (fence 0 until confirmed).
    /// Until [`Cluster::acquired`], requests for it wait for its state here.
    pub async fn reserve(&self, room: &RoomId) -> anyhow::Result<bool> {
        let mut r = self.redis();
        let set: Option<String> = r
            .set_options(
                owner_key(room),
                format!("{}|0", self.0.node_id),
                redis::SetOptions::default()
                    .conditional_set(redis::ExistenceCheck::NX)
                    .with_expiration(redis::SetExpiry::PX(LEASE_TTL.as_millis() as u64)),
            )
            .await?;
        if set.is_some() {
            self.0
                .acquiring
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(room.clone());
        }
        Ok(set.is_some())
    }

    /// Turns a reservation into the lease with fencing token `fence`.
    pub async fn confirm(&self, room: &RoomId, fence: i64) -> anyhow::Result<bool> {
        let mut r = self.redis();
        let done: i64 = redis::Script::new(CONFIRM)
            .key(owner_key(room))
            .arg(format!("{}|0", self.0.node_id))
            .arg(format!("{}|{fence}", self.0.node_id))
            .arg(LEASE_TTL.as_millis() as u64)
            .invoke_async(&mut r)
            .await?;
        if done == 1 {
            self.leases().insert(room.clone(), fence);
            self.0.changed.notify_one();
        }
        Ok(done == 1)
    }

    /// Takes a live room nobody owns: reserve the lease, take the next fencing token from
    /// the database, confirm. None if another node was first or the room ended.
    pub async fn claim(&self, store: &Store, room: &RoomId) -> anyhow::Result<Option<i64>> {
        if self.is_draining() || !self.reserve(room).await? {
            return Ok(None);
        }
        let fence = match store.next_room_fence(room).await {
            Ok(Some(f)) => f,
            Ok(None) => {
                self.drop_reservation(room).await;
                return Ok(None);
            }
            Err(e) => {
                self.drop_reservation(room).await;
                return Err(e.into());
            }
        };
        let confirmed = self.confirm(room, fence).await;
        if !matches!(confirmed, Ok(true)) {
            self.acquired(room);
        }
        Ok(confirmed?.then_some(fence))
    }

    async fn drop_reservation(&self, room: &RoomId) {
        self.acquired(room);
        let mut r = self.redis();
        let _: Result<i64, _> = redis::Script::new(RELEASE)
            .key(owner_key(room))
            .arg(format!("{}|0", self.0.node_id))
            .invoke_async(&mut r)
            .await;
    }

    /// Renews every lease this node holds; returns the rooms whose lease was lost (expired
    /// and taken by another node: they must be let go here at once).
    pub async fn renew(&self) -> anyhow::Result<Vec<RoomId>> {
        let held: Vec<(RoomId, i64)> = self.leases().iter().map(|(r, f)| (r.clone(), *f)).collect();
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let script = redis::Script::new(RENEW);
        let mut pipe = redis::pipe();
        for (room, fence) in &held {
            pipe.invoke_script(
                script
                    .key(owner_key(room))
                    .arg(format!("{}|{fence}", self.0.node_id))
                    .arg(LEASE_TTL.as_millis() as u64),
            );
        }
        let mut r = self.redis();
        // Scripts not yet cached by this Redis are loaded first (pipelines do not retry).
        let _: () = script
            .prepare_invoke()
            .load_async(&mut r)
            .await
            .map(|_: String| ())?;
        let answers: Vec<i64> = pipe.query_async(&mut r).await?;
        let mut lost = Vec::new();
        for ((room, _), ok) in held.into_iter().zip(answers) {
            if ok == 0 {
                lost.push(room);
            }
        }
        if !lost.is_empty() {
            let mut leases = self.leases();
            for room in &lost {
                leases.remove(room);
            }
        }
        Ok(lost)
    }

    /// Gives up `room`'s lease (it ended, or this node drains): another node may take it.
    pub async fn release(&self, room: &RoomId) {
        let fence = self.leases().remove(room);
        let Some(fence) = fence else { return };
        let mut r = self.redis();
        let result: Result<i64, _> = redis::Script::new(RELEASE)
            .key(owner_key(room))
            .arg(format!("{}|{fence}", self.0.node_id))
            .invoke_async(&mut r)
            .await;
        if let Err(e) = result {
            tracing::warn!(room = %room, error = %e, "could not release a room's lease (it expires by itself)");
        }
    }

    /// Rooms this node holds the lease of.
    pub fn held(&self) -> Vec<RoomId> {
        self.leases().keys().cloned().collect()
    }

    pub fn holds(&self, room: &RoomId) -> bool {
        self.leases().contains_key(room)
    }

    /// The live node with the least load that takes new rooms (this one if alone).
    pub async fn least_loaded(&self) -> anyhow::Result<Option<NodeInfo>> {
        Ok(self
            .nodes()
            .await?
            .into_iter()
            .filter(|n| !n.draining)
            .min_by_key(|n| (n.load(), n.id.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_values_parse_with_pipes_in_node_names_refused_by_rsplit() {
        assert_eq!(
            Owner::parse("node-a|42"),
            Some(Owner {
                node: "node-a".into(),
                fence: 42
            })
        );
        assert_eq!(Owner::parse("node-a"), None);
        assert_eq!(Owner::parse("node-a|x"), None);
    }

    #[test]
    fn load_counts_rooms_heavier_than_one_connection() {
        let mut a = NodeInfo {
            id: "a".into(),
            url: String::new(),
            rooms: 1,
            connections: 10,
            media_peers: 10,
            draining: false,
            started_at: 0,
            heartbeat_at: 0,
            cascade: None,
        };
        let b = NodeInfo {
            rooms: 0,
            connections: 80,
            ..a.clone()
        };
        assert!(a.load() < b.load());
        a.rooms = 3;
        assert!(a.load() > b.load());
    }
}
