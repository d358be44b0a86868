//! The room's MLS group as one device sees it.
//!
//! Ordering: two members may commit on the same epoch; MLS accepts only one. The server
//! relays commits in one order per room and tells the committer whether its commit was the
//! one taken, so the committer either [`confirm`](RoomGroup::confirm)s (merges its pending
//! commit) or [`discard`](RoomGroup::discard)s it and processes the winner.

use crate::device::{fingerprint, identity_of, parse_key_package, to_bytes, Device};
use crate::error::{crypto, refused, E2eeError};
use crate::media::EpochKey;
use crate::{MLS_CIPHERSUITE, SFRAME_SUITE};
use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::*;
use sha2::{Digest, Sha256};

/// The messages a commit produces: the commit for current members, and a welcome for the
/// devices it adds.
#[derive(Debug, Clone)]
pub struct Handshake {
    pub commit: Vec<u8>,
    pub welcome: Option<Vec<u8>>,
    /// The epoch the commit starts once merged.
    pub epoch: u64,
}

/// What processing another member's commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// Merged: the group is now at this epoch.
    Epoch(u64),
    /// The commit removed this device: it keeps no key for what follows.
    Removed,
}

/// A member of the group as the app lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub index: u32,
    pub user: String,
    pub fingerprint: String,
}

pub struct RoomGroup {
    group: MlsGroup,
    removed: bool,
}

fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        // Welcomes carry the ratchet tree, so a joiner needs nothing from the server but bytes.
        .use_ratchet_tree_extension(true)
        // Handshakes are PrivateMessages: the server cannot even see who is added or removed
        // beyond what the room's roster already tells it.
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .build()
}

impl RoomGroup {
    /// A new group for `room`, with `device` as its only member (the room's creator).
    pub fn create(device: &Device, room: &str) -> Result<Self, E2eeError> {
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(MLS_CIPHERSUITE)
            .use_ratchet_tree_extension(true)
            .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
            .build();
        let group = MlsGroup::new_with_group_id(
            &device.provider,
            &device.signer,
            &config,
            GroupId::from_slice(room.as_bytes()),
            device.credential.clone(),
        )
        .map_err(crypto)?;
        Ok(RoomGroup {
            group,
            removed: false,
        })
    }

    /// Joins from a welcome addressed to one of `device`'s key packages.
    pub fn join(device: &Device, welcome: &[u8]) -> Result<Self, E2eeError> {
        let message =
            MlsMessageIn::tls_deserialize_exact(welcome).map_err(|e| E2eeError::Malformed {
                what: "welcome",
                detail: e.to_string(),
            })?;
        let MlsMessageBodyIn::Welcome(welcome) = message.extract() else {
            return Err(E2eeError::Malformed {
                what: "welcome",
                detail: "another kind of MLS message".into(),
            });
        };
        let group =
            StagedWelcome::new_from_welcome(&device.provider, &join_config(), welcome, None)
                .map_err(refused)?
                .into_group(&device.provider)
                .map_err(refused)?;
        Ok(RoomGroup {
            group,
            removed: false,
        })
    }

    /// Drops the group from the device's store: the device may then create or join the
    /// room's group again (a removal, or a relay that started over).
    pub fn forget(mut self, device: &Device) -> Result<(), E2eeError> {
        self.group.delete(device.provider.storage()).map_err(crypto)
    }

    pub fn room(&self) -> String {
        String::from_utf8_lossy(self.group.group_id().as_slice()).into_owned()
    }

    pub fn epoch(&self) -> u64 {
        self.group.epoch().as_u64()
    }

    pub fn own_index(&self) -> u32 {
        self.group.own_leaf_index().u32()
    }

    pub fn is_member(&self) -> bool {
        !self.removed && self.group.is_active()
    }

    pub fn members(&self) -> Vec<GroupMember> {
        self.group
            .members()
            .map(|m| GroupMember {
                index: m.index.u32(),
                user: identity_of(&m.credential),
                fingerprint: fingerprint(&m.signature_key),
            })
            .collect()
    }

    /// Stages one commit that adds the devices behind `adds` (user id, key package) and
    /// removes every device of the users in `removes`. Nothing changes until
    /// [`confirm`](Self::confirm).
    pub fn commit(
        &mut self,
        device: &Device,
        adds: &[(String, Vec<u8>)],
        removes: &[String],
    ) -> Result<Handshake, E2eeError> {
        if !self.is_member() {
            return Err(E2eeError::NotMember);
        }
        let mut key_packages = Vec::with_capacity(adds.len());
        for (user, bytes) in adds {
            key_packages.push(parse_key_package(&device.provider, bytes, user)?);
        }
        let own = self.group.own_leaf_index();
        let leaves: Vec<LeafNodeIndex> = self
            .group
            .members()
            .filter(|m| m.index != own && removes.contains(&identity_of(&m.credential)))
            .map(|m| m.index)
            .collect();
        let bundle = self
            .group
            .commit_builder()
            .propose_adds(key_packages)
            .propose_removals(leaves)
            .force_self_update(true)
            .load_psks(device.provider.storage())
            .map_err(crypto)?
            .build(
                device.provider.rand(),
                device.provider.crypto(),
                &device.signer,
                |_| true,
            )
            .map_err(refused)?
            .stage_commit(&device.provider)
            .map_err(refused)?;
        let welcome = bundle.to_welcome_msg();
        let (commit, _, _) = bundle.into_contents();
        Ok(Handshake {
            commit: to_bytes(&commit)?,
            welcome: welcome.as_ref().map(to_bytes).transpose()?,
            epoch: self.epoch() + 1,
        })
    }

    /// The server took this device's pending commit: move to its epoch.
    pub fn confirm(&mut self, device: &Device) -> Result<u64, E2eeError> {
        self.group
            .merge_pending_commit(&device.provider)
            .map_err(refused)?;
        Ok(self.epoch())
    }

    /// The server took another commit for this epoch: forget ours.
    pub fn discard(&mut self, device: &Device) -> Result<(), E2eeError> {
        self.group
            .clear_pending_commit(device.provider.storage())
            .map_err(crypto)
    }

    /// Processes another member's commit (relayed by the server).
    pub fn process(&mut self, device: &Device, commit: &[u8]) -> Result<Processed, E2eeError> {
        if !self.is_member() {
            return Err(E2eeError::NotMember);
        }
        let message =
            MlsMessageIn::tls_deserialize_exact(commit).map_err(|e| E2eeError::Malformed {
                what: "commit",
                detail: e.to_string(),
            })?;
        let message = message
            .try_into_protocol_message()
            .map_err(|e| E2eeError::Malformed {
                what: "commit",
                detail: format!("{e:?}"),
            })?;
        let processed = self
            .group
            .process_message(&device.provider, message)
            .map_err(refused)?;
        match processed.into_content() {
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                let removed = staged.self_removed();
                self.group
                    .merge_staged_commit(&device.provider, *staged)
                    .map_err(refused)?;
                if removed {
                    self.removed = true;
                    Ok(Processed::Removed)
                } else {
                    Ok(Processed::Epoch(self.epoch()))
                }
            }
            _ => Err(E2eeError::Refused("not a commit".into())),
        }
    }

    /// A code every member of the same epoch sees identically, to compare out of band
    /// ("read me your code"): twelve digits from the epoch authenticator (RFC 9420 §8.7).
    /// A server that split the room into two groups cannot make their codes match.
    pub fn safety_code(&self) -> String {
        let digest = Sha256::new()
            .chain_update(b"ruang safety code")
            .chain_update(self.group.epoch_authenticator().as_slice())
            .finalize();
        let mut n = u64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8]));
        let mut digits = [0u8; 12];
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        digits
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The epoch's SFrame base key (RFC 9605 §5.2: `MLS-Exporter("SFrame 1.0 Base Key", "",
    /// AEAD.Nk)`) with this device's index, for [`crate::MediaCrypto::install_key`].
    pub fn epoch_key(&self, device: &Device) -> Result<EpochKey, E2eeError> {
        if !self.is_member() {
            return Err(E2eeError::NotMember);
        }
        let base = self
            .group
            .export_secret(
                device.provider.crypto(),
                "SFrame 1.0 Base Key",
                b"",
                SFRAME_SUITE.key_len(),
            )
            .map_err(crypto)?;
        EpochKey::new(self.epoch(), self.own_index(), &base)
    }
}
