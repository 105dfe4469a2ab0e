//! 32-byte secret keys in files only their owner can read (the agent key, the audit key):
//! created from the system's secure random source with mode 0600, and refused when group
//! or others can read them.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} has mode {mode:o}; a key must be readable by its owner only (chmod 600)")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("{path}: expected {KEY_LEN} bytes")]
    Length { path: PathBuf },
    #[error("the system random generator failed")]
    Random,
}

/// Load the key at `path`, creating it first if it is absent and `create`.
pub fn load(path: &Path, create: bool) -> Result<[u8; KEY_LEN], KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    if create && !path.exists() {
        let mut bytes = [0u8; KEY_LEN];
        crate::tls::crypto_provider()
            .secure_random
            .fill(&mut bytes)
            .map_err(|_| KeyFileError::Random)?;
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        file.write_all(&bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
        return Ok(bytes);
    }
    let mode = fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    fs::read(path)
        .map_err(io)?
        .try_into()
        .map_err(|_| KeyFileError::Length {
            path: path.to_path_buf(),
        })
}

/// A text secret (a Slack bot token, a signing secret, a webhook key) from a file only its
/// owner can read; surrounding whitespace trimmed. Never logged.
pub fn read_secret(path: &Path) -> Result<String, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mode = fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let text = fs::read_to_string(path).map_err(io)?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(KeyFileError::Length {
            path: path.to_path_buf(),
        });
    }
    Ok(secret.to_string())
}
