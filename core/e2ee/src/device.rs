//! One device's identity and its MLS key material.

use crate::error::{crypto, E2eeError};
use crate::MLS_CIPHERSUITE;
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use sha2::{Digest, Sha256};

/// A member's device: an Ed25519 identity key in an MLS basic credential carrying the member's
/// user id, and the provider that keeps this device's private MLS state (HPKE private keys of
/// its key packages, group secrets). Nothing here leaves the device except public parts.
pub struct Device {
    pub(crate) provider: OpenMlsRustCrypto,
    pub(crate) signer: SignatureKeyPair,
    pub(crate) credential: CredentialWithKey,
    user: String,
}

impl Device {
    /// A new device identity for member `user` (their user id).
    pub fn new(user: &str) -> Result<Self, E2eeError> {
        let signer =
            SignatureKeyPair::new(MLS_CIPHERSUITE.signature_algorithm()).map_err(crypto)?;
        Self::with_signer(user, signer)
    }

    /// Restores a device from its identity key (as returned by [`Device::identity_secret`]).
    /// Group state is not restored: a restarted device joins rooms again.
    pub fn restore(user: &str, identity: &[u8]) -> Result<Self, E2eeError> {
        let signer: SignatureKeyPair =
            serde_json::from_slice(identity).map_err(|e| E2eeError::Malformed {
                what: "identity key",
                detail: e.to_string(),
            })?;
        if signer.signature_scheme() != MLS_CIPHERSUITE.signature_algorithm() {
            return Err(E2eeError::Refused(
                "identity key of another algorithm".into(),
            ));
        }
        Self::with_signer(user, signer)
    }

    fn with_signer(user: &str, signer: SignatureKeyPair) -> Result<Self, E2eeError> {
        let provider = OpenMlsRustCrypto::default();
        signer.store(provider.storage()).map_err(crypto)?;
        let credential = CredentialWithKey {
            credential: BasicCredential::new(user.as_bytes().to_vec()).into(),
            signature_key: signer.to_public_vec().into(),
        };
        Ok(Device {
            provider,
            signer,
            credential,
            user: user.to_string(),
        })
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// The identity key pair, serialized for the platform's key store. Secret.
    pub fn identity_secret(&self) -> Result<Vec<u8>, E2eeError> {
        serde_json::to_vec(&self.signer).map_err(crypto)
    }

    /// A short fingerprint of the identity key, shown next to the member in the app so people
    /// can tell a device the server slipped in from the real one.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.signer.public())
    }

    /// A fresh, single-use key package (serialized MLS message) another member adds this
    /// device with. The server hands it out; it holds only public keys.
    pub fn key_package(&self) -> Result<Vec<u8>, E2eeError> {
        let bundle = KeyPackage::builder()
            .build(
                MLS_CIPHERSUITE,
                &self.provider,
                &self.signer,
                self.credential.clone(),
            )
            .map_err(crypto)?;
        MlsMessageOut::from(bundle.key_package().clone())
            .to_bytes()
            .map_err(crypto)
    }
}

impl Device {
    /// Whether another member's key package would be accepted by a commit (signature,
    /// lifetime, suite, and a credential naming `user`): a committer leaves out the ones that
    /// would not, rather than failing the whole commit.
    pub fn check_key_package(&self, bytes: &[u8], user: &str) -> Result<(), E2eeError> {
        parse_key_package(&self.provider, bytes, user).map(|_| ())
    }
}

/// Validates a serialized key package (signature, lifetime, suite) and checks that its
/// credential names `expected_user`.
pub(crate) fn parse_key_package(
    provider: &OpenMlsRustCrypto,
    bytes: &[u8],
    expected_user: &str,
) -> Result<KeyPackage, E2eeError> {
    let message = MlsMessageIn::tls_deserialize_exact(bytes).map_err(|e| E2eeError::Malformed {
        what: "key package",
        detail: e.to_string(),
    })?;
    let MlsMessageBodyIn::KeyPackage(kp) = message.extract() else {
        return Err(E2eeError::Malformed {
            what: "key package",
            detail: "another kind of MLS message".into(),
        });
    };
    let kp = kp
        .validate(provider.crypto(), ProtocolVersion::Mls10)
        .map_err(crate::error::refused)?;
    if kp.ciphersuite() != MLS_CIPHERSUITE {
        return Err(E2eeError::Refused(
            "key package of another cipher suite".into(),
        ));
    }
    let found = identity_of(kp.leaf_node().credential());
    if found != expected_user {
        return Err(E2eeError::WrongIdentity {
            expected: expected_user.to_string(),
            found,
        });
    }
    Ok(kp)
}

pub(crate) fn identity_of(credential: &Credential) -> String {
    String::from_utf8_lossy(credential.serialized_content()).into_owned()
}

/// Five groups of four hex digits of SHA-256 over a public signature key.
pub(crate) fn fingerprint(public: &[u8]) -> String {
    let digest = Sha256::digest(public);
    let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    hex.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Serializes an outgoing MLS message.
pub(crate) fn to_bytes(message: &MlsMessageOut) -> Result<Vec<u8>, E2eeError> {
    message.tls_serialize_detached().map_err(crypto)
}
