//! Node-to-node authentication: `x-ruang-node: NODE;TIME_MS;CLIENT_IP;HMAC` where HMAC is
//! HMAC-SHA256 (hex) with the cluster secret over the node, time, client address, method
//! and path. A forwarded request keeps the address of the client that made it (for rate
//! limits and connection caps); nobody without the secret can claim to be a node.

use crate::store::{now_ms, Store};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::IpAddr;

pub const HEADER: &str = "x-ruang-node";
/// A signed header older (or newer) than this is refused: a captured one is soon useless.
const MAX_SKEW_MS: i64 = 30_000;

/// The cluster secret, shared by every node through the database.
#[derive(Clone)]
pub struct NodeKey([u8; 32]);

/// Who forwarded a request, and for which client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    pub node: String,
    pub client_ip: IpAddr,
}

impl NodeKey {
    pub async fn load(store: &Store) -> anyhow::Result<NodeKey> {
        let value = store
            .secret_or_insert("cluster", || {
                let mut b = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
                hex::encode(b)
            })
            .await?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(value.trim(), &mut key)
            .map_err(|_| anyhow::anyhow!("the stored cluster secret is unreadable"))?;
        Ok(NodeKey(key))
    }

    #[cfg(any(test, feature = "fuzzing"))]
    pub fn from_bytes(b: [u8; 32]) -> NodeKey {
        NodeKey(b)
    }

    fn mac(&self, node: &str, at: i64, ip: &str, method: &str, path: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        for part in [node, &at.to_string(), ip, method, path] {
            mac.update(part.as_bytes());
            mac.update(b"\n");
        }
        mac
    }

    /// HMAC-SHA256 of `data` (the cascade's datagrams).
    pub fn tag(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is the start of [`NodeKey::tag`] of `data` (compared in constant time).
    pub fn verify_tag(&self, data: &[u8], tag: &[u8]) -> bool {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(data);
        mac.verify_truncated_left(tag).is_ok()
    }

    /// The header value for a request this node forwards for `client_ip`.
    pub fn sign(&self, node: &str, client_ip: IpAddr, method: &str, path: &str) -> String {
        let at = now_ms();
        let ip = client_ip.to_string();
        let tag = self
            .mac(node, at, &ip, method, path)
            .finalize()
            .into_bytes();
        format!("{node};{at};{ip};{}", hex::encode(tag))
    }

    /// Checks a header value for `method` and `path` (with its query).
    pub fn verify(&self, value: &str, method: &str, path: &str) -> Option<Forwarded> {
        let mut parts = value.split(';');
        let (node, at, ip, tag) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let at: i64 = at.parse().ok()?;
        if (now_ms() - at).abs() > MAX_SKEW_MS {
            return None;
        }
        let client_ip: IpAddr = ip.parse().ok()?;
        let tag = hex::decode(tag).ok()?;
        self.mac(node, at, ip, method, path)
            .verify_slice(&tag)
            .ok()?;
        Some(Forwarded {
            node: node.to_owned(),
            client_ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_request_verifies_for_its_own_method_and_path_only() {
        let key = NodeKey::from_bytes([7; 32]);
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let h = key.sign("node-a", ip, "GET", "/v1/rooms/r1/ws");
        assert_eq!(
            key.verify(&h, "GET", "/v1/rooms/r1/ws"),
            Some(Forwarded {
                node: "node-a".into(),
                client_ip: ip
            })
        );
        assert_eq!(key.verify(&h, "POST", "/v1/rooms/r1/ws"), None);
        assert_eq!(key.verify(&h, "GET", "/v1/rooms/r2/ws"), None);
        // Another cluster's secret.
        assert_eq!(
            NodeKey::from_bytes([8; 32]).verify(&h, "GET", "/v1/rooms/r1/ws"),
            None
        );
        // A changed client address.
        let forged = h.replace("203.0.113.9", "198.51.100.1");
        assert_eq!(key.verify(&forged, "GET", "/v1/rooms/r1/ws"), None);
    }

    #[test]
    fn old_and_malformed_headers_are_refused() {
        let key = NodeKey::from_bytes([7; 32]);
        let at = now_ms() - 60_000;
        let tag = key
            .mac("a", at, "127.0.0.1", "GET", "/x")
            .finalize()
            .into_bytes();
        let old = format!("a;{at};127.0.0.1;{}", hex::encode(tag));
        assert_eq!(key.verify(&old, "GET", "/x"), None);
        for bad in ["", ";;;", "a;1;2;3;4", "a;x;127.0.0.1;00", "a;1;notanip;00"] {
            assert_eq!(key.verify(bad, "GET", "/x"), None, "{bad:?}");
        }
    }
}
