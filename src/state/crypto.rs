//! Secret sealing: AES-256-GCM with a data key per tenant, wrapped by the master key.
//!
//! The master key comes from `LANDLORD_MASTER_KEY` (64 hex digits or base64 of 32 bytes)
//! or from a key file generated with mode 0600 on first use.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use rand::RngCore;

use super::StateError;

/// Environment variable holding the master key.
pub const MASTER_KEY_ENV: &str = "LANDLORD_MASTER_KEY";

/// A 256-bit key.
#[derive(Clone)]
pub struct Key([u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// A fresh random key.
    pub fn generate() -> Key {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Key(k)
    }

    fn parse(text: &str) -> Option<Key> {
        let t = text.trim();
        let bytes = hex::decode(t)
            .ok()
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(t).ok())?;
        Some(Key(bytes.try_into().ok()?))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new((&self.0).into())
    }

    /// A keyed digest (HMAC-SHA256, hex) of `data` for `purpose`: it proves the data was
    /// written by a holder of this key without revealing anything about it.
    pub fn mac(&self, purpose: &str, data: &[u8]) -> String {
        use hmac::Mac;
        let mut m = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0)
            .expect("HMAC takes keys of any length");
        m.update(purpose.as_bytes());
        m.update(&[0]);
        m.update(data);
        hex::encode(m.finalize().into_bytes())
    }

    /// Encrypts with associated data; output is nonce || ciphertext.
    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(ct);
        out
    }

    /// Decrypts what `seal` produced; `None` when the key or associated data is wrong.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 12 {
            return None;
        }
        let (nonce, ct) = sealed.split_at(12);
        self.cipher()
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .ok()
    }

    /// Wraps a data key for `scope`.
    pub fn wrap(&self, dk: &Key, scope: &str) -> Vec<u8> {
        self.seal(&dk.0, format!("landlord-data-key:{scope}").as_bytes())
    }

    /// Unwraps a data key for `scope`.
    pub fn unwrap_key(&self, wrapped: &[u8], scope: &str) -> Option<Key> {
        let b = self.open(wrapped, format!("landlord-data-key:{scope}").as_bytes())?;
        Some(Key(b.try_into().ok()?))
    }
}

/// Where the master key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The environment variable.
    Env,
    /// An existing key file.
    File(PathBuf),
    /// A key file generated now.
    Generated(PathBuf),
    /// A key file holding the master key encrypted under a KMS key (`generated`: now).
    Kms {
        /// The key file.
        file: PathBuf,
        /// The KMS key.
        key_id: String,
        /// Whether KMS generated the key during this run.
        generated: bool,
    },
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env => write!(f, "{MASTER_KEY_ENV}"),
            KeySource::File(p) | KeySource::Generated(p) => write!(f, "key file `{}`", p.display()),
            KeySource::Kms { file, key_id, .. } => {
                write!(
                    f,
                    "key file `{}` (under KMS key `{key_id}`)",
                    file.display()
                )
            }
        }
    }
}

/// Prefix of a key file whose key is encrypted under KMS.
const KMS_PREFIX: &str = "kms:";

/// Loads the master key kept under a KMS key: `key_file` holds `kms:<base64>`, a data key
/// KMS generated and encrypted (created on first use, safe to commit: only KMS can
/// decrypt it); every run asks KMS to decrypt it.
pub fn kms_master_key(
    key_id: &str,
    region: Option<&str>,
    key_file: &Path,
) -> Result<(Key, KeySource), StateError> {
    use aws_sdk_kms::primitives::Blob;
    let rt = super::sdk::Rt::new().map_err(|e| StateError::Key(e.to_string()))?;
    let client = aws_sdk_kms::Client::new(&rt.aws_config(region));
    let kms_err = |what: &str, e: &dyn std::error::Error| {
        StateError::Key(format!(
            "KMS key `{key_id}`: cannot {what}: {}",
            aws_sdk_kms::error::DisplayErrorContext(e)
        ))
    };
    let source = |generated| KeySource::Kms {
        file: key_file.to_path_buf(),
        key_id: key_id.to_string(),
        generated,
    };
    match std::fs::read_to_string(key_file) {
        Ok(t) => {
            let sealed = t
                .trim()
                .strip_prefix(KMS_PREFIX)
                .and_then(from_text)
                .ok_or_else(|| {
                    StateError::Key(format!(
                        "key file `{}` does not hold a KMS-encrypted key (`{KMS_PREFIX}<base64>`); \
                         it was not written with `kms_key_id`",
                        key_file.display()
                    ))
                })?;
            let out = rt
                .call(
                    client
                        .decrypt()
                        .key_id(key_id)
                        .ciphertext_blob(Blob::new(sealed))
                        .send(),
                )
                .map_err(|e| kms_err("decrypt the master key", &e))?;
            let plain = out
                .plaintext()
                .map(|b| b.as_ref().to_vec())
                .unwrap_or_default();
            let k: [u8; 32] = plain.try_into().map_err(|_| {
                StateError::Key(format!(
                    "KMS key `{key_id}` returned a key that is not 32 bytes"
                ))
            })?;
            Ok((Key(k), source(false)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let out = rt
                .call(
                    client
                        .generate_data_key()
                        .key_id(key_id)
                        .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
                        .send(),
                )
                .map_err(|e| kms_err("generate a master key", &e))?;
            let (Some(plain), Some(sealed)) = (out.plaintext(), out.ciphertext_blob()) else {
                return Err(StateError::Key(format!(
                    "KMS key `{key_id}` returned no data key"
                )));
            };
            let k: [u8; 32] = plain.as_ref().to_vec().try_into().map_err(|_| {
                StateError::Key(format!(
                    "KMS key `{key_id}` returned a key that is not 32 bytes"
                ))
            })?;
            write_new(
                key_file,
                &format!("{KMS_PREFIX}{}\n", to_text(sealed.as_ref())),
            )?;
            Ok((Key(k), source(true)))
        }
        Err(e) => Err(StateError::Key(format!(
            "cannot read key file `{}`: {e}",
            key_file.display()
        ))),
    }
}

/// Creates `path` (mode 0600) with `text`, durably; refuses to overwrite.
fn write_new(path: &Path, text: &str) -> Result<(), StateError> {
    let io = |e: std::io::Error| {
        StateError::Key(format!("cannot create key file `{}`: {e}", path.display()))
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

/// The master key from `env` (the value of `LANDLORD_MASTER_KEY`) or `key_file`, or
/// `None` when neither holds one; never creates a key. A key file that group or others
/// may read is refused, as ssh refuses such private keys.
pub fn read_master_key(
    env: Option<String>,
    key_file: &Path,
) -> Result<Option<(Key, KeySource)>, StateError> {
    if let Some(v) = env.filter(|v| !v.trim().is_empty()) {
        let k = Key::parse(&v).ok_or_else(|| {
            StateError::Key(format!(
                "{MASTER_KEY_ENV} must be 64 hex digits or base64 of 32 bytes"
            ))
        })?;
        return Ok(Some((k, KeySource::Env)));
    }
    match std::fs::read_to_string(key_file) {
        Ok(t) => {
            check_private(key_file)?;
            let k = Key::parse(&t).ok_or_else(|| {
                StateError::Key(format!(
                    "key file `{}` does not hold a 32-byte key",
                    key_file.display()
                ))
            })?;
            Ok(Some((k, KeySource::File(key_file.to_path_buf()))))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError::Key(format!(
            "cannot read key file `{}`: {e}",
            key_file.display()
        ))),
    }
}

/// Refuses a key file that group or others may read or write.
fn check_private(key_file: &Path) -> Result<(), StateError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(key_file)
        .map_err(|e| StateError::Key(format!("key file `{}`: {e}", key_file.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(StateError::Key(format!(
            "key file `{}` is accessible by group or others (mode {:04o}): run `chmod 600 {}`",
            key_file.display(),
            mode & 0o7777,
            key_file.display()
        )));
    }
    Ok(())
}

/// Writes `key` to a new key file (mode 0600); fails when the file exists.
pub fn write_key_file(key: &Key, key_file: &Path) -> Result<KeySource, StateError> {
    write_new(key_file, &format!("{}\n", hex::encode(key.0)))?;
    Ok(KeySource::Generated(key_file.to_path_buf()))
}

/// Base64 text of sealed bytes, as stored in records.
pub fn to_text(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Bytes of a base64 text.
pub fn from_text(t: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_wrong_aad() {
        let k = Key::generate();
        let s = k.seal(b"hunter2", b"acme/x.y");
        assert!(!s.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(k.open(&s, b"acme/x.y").unwrap(), b"hunter2");
        assert!(k.open(&s, b"beta/x.y").is_none());
        let dk = Key::generate();
        let w = k.wrap(&dk, "acme");
        assert_eq!(k.unwrap_key(&w, "acme").unwrap().0, dk.0);
        assert!(Key::generate().unwrap_key(&w, "acme").is_none());
    }

    #[test]
    fn key_file_is_created_0600_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".landlord/master.key");
        assert!(read_master_key(None, &p).unwrap().is_none());
        let k1 = Key::generate();
        let src = write_key_file(&k1, &p).unwrap();
        assert_eq!(src, KeySource::Generated(p.clone()));
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (k2, src) = read_master_key(None, &p).unwrap().unwrap();
        assert_eq!(src, KeySource::File(p.clone()));
        assert_eq!(k1.0, k2.0);
        assert!(
            write_key_file(&k2, &p).is_err(),
            "an existing key file is never replaced"
        );
        assert!(read_master_key(Some("nope".into()), &p).is_err());
    }
}
