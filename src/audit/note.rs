//! Signed checkpoints in the C2SP signed-note format (c2sp.org/signed-note), with a body
//! shaped like a C2SP tlog checkpoint:
//!
//! ```text
//! <origin>
//! <number of records>
//! <base64 SHA-256 of the last record line>
//!
//! — <key name> <base64(key id ‖ Ed25519 signature)>
//! ```
//!
//! The log is a hash chain, not a Merkle tree, so the "root hash" is the chain head. The
//! key id is the first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key), and the
//! verifier key is written `name+<key id hex>+<base64(0x01 ‖ public key)>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

const ED25519_TYPE: u8 = 0x01;

/// The signing side: a name and an Ed25519 key.
pub struct NoteSigner {
    name: String,
    key: SigningKey,
}

/// The verifying side, parsed from a verifier key string.
#[derive(Debug, Clone)]
pub struct NoteVerifier {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut hash = Sha256::new();
    hash.update(name.as_bytes());
    hash.update(b"\n");
    hash.update([ED25519_TYPE]);
    hash.update(public);
    let digest = hash.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

impl NoteSigner {
    pub fn new(name: &str, seed: &[u8; 32]) -> NoteSigner {
        NoteSigner {
            name: name.to_string(),
            key: SigningKey::from_bytes(seed),
        }
    }

    /// `name+<id hex>+<base64(0x01 ‖ public key)>`: give this to auditors.
    pub fn verifier_key(&self) -> String {
        let public = self.key.verifying_key().to_bytes();
        let id = key_id(&self.name, &public);
        let mut typed = vec![ED25519_TYPE];
        typed.extend_from_slice(&public);
        format!("{}+{}+{}", self.name, hex::encode(id), B64.encode(typed))
    }

    /// A signed note for `body` (which must end with a newline).
    pub fn sign(&self, body: &str) -> String {
        let public = self.key.verifying_key().to_bytes();
        let signature = self.key.sign(body.as_bytes()).to_bytes();
        let mut blob = key_id(&self.name, &public).to_vec();
        blob.extend_from_slice(&signature);
        format!("{body}\n\u{2014} {} {}\n", self.name, B64.encode(blob))
    }
}

impl NoteVerifier {
    /// Parse `name+<id hex>+<base64(0x01 ‖ public key)>`.
    pub fn parse(text: &str) -> Result<NoteVerifier, String> {
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err("a verifier key is name+keyid+base64key".into());
        };
        let typed = B64
            .decode(key_b64)
            .map_err(|e| format!("verifier key: {e}"))?;
        let Some((&ED25519_TYPE, public)) = typed.split_first() else {
            return Err("verifier key: not an Ed25519 key".into());
        };
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| "verifier key: an Ed25519 key is 32 bytes".to_string())?;
        let key = VerifyingKey::from_bytes(&public).map_err(|e| format!("verifier key: {e}"))?;
        let id = key_id(name, &public);
        if hex::encode(id) != id_hex {
            return Err("verifier key: the key id does not match the name and key".into());
        }
        Ok(NoteVerifier {
            name: name.to_string(),
            id,
            key,
        })
    }

    /// The body of `note` if it carries a valid signature by this key.
    pub fn open<'n>(&self, note: &'n str) -> Result<&'n str, String> {
        let split = note
            .find("\n\n")
            .ok_or("a signed note has a blank line before its signatures")?;
        let (body, signatures) = (&note[..split + 1], &note[split + 2..]);
        for line in signatures.lines() {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                return Err(format!("bad signature line `{line}`"));
            };
            let Some((name, blob)) = rest.split_once(' ') else {
                continue;
            };
            if name != self.name {
                continue;
            }
            let blob = B64.decode(blob).map_err(|e| format!("signature: {e}"))?;
            if blob.len() != 68 || blob[..4] != self.id {
                continue;
            }
            let signature = Signature::from_slice(&blob[4..]).map_err(|e| e.to_string())?;
            return self
                .key
                .verify(body.as_bytes(), &signature)
                .map(|()| body)
                .map_err(|_| "the checkpoint signature does not verify".to_string());
        }
        Err(format!("the checkpoint is not signed by `{}`", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_verify_with_the_verifier_key_and_nothing_else() {
        let signer = NoteSigner::new("airlock.example/audit", &[7u8; 32]);
        let note = signer.sign("airlock.example/audit\n3\nAAAA\n");
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        assert_eq!(
            verifier.open(&note).unwrap(),
            "airlock.example/audit\n3\nAAAA\n"
        );
        let forged = note.replace("\n3\n", "\n4\n");
        assert!(verifier.open(&forged).is_err());
        let other = NoteSigner::new("airlock.example/audit", &[8u8; 32]);
        assert!(
            verifier
                .open(&other.sign("airlock.example/audit\n3\nAAAA\n"))
                .is_err()
        );
        assert!(NoteVerifier::parse(&signer.verifier_key().replace("+", "+0")).is_err());
    }
}
