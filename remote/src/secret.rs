//! [`Secret`]: the shared secret of the development handshake, from the
//! configuration, a file or an environment variable, and never printed.
//!
//! `Debug` shows where a secret comes from, never its bytes; the bytes are
//! read when a node starts (or its settings are validated) and compared in
//! constant time by [`auth`](crate::auth). The secrets shipped in courier's
//! own examples and guides are refused, so that a copied sample never
//! guards a real cluster.

use std::io::Read;
use std::path::PathBuf;

/// The largest secret file read, in bytes: a secret is a short string, and
/// a path naming something else (a log, a device) must not be read whole.
const MAX_SECRET_FILE: u64 = 4096;

/// Secrets that appear in courier's examples and documentation: refused,
/// because anyone can read them.
const SAMPLES: &[&str] = &[
    "change me: at least 16 bytes",
    "a secret of at least 16 bytes",
    "two-nodes-demo-secret",
    "courier-test-secret",
];

/// A shared secret and where it comes from. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Source);

#[derive(Clone, PartialEq, Eq)]
enum Source {
    Value(String),
    File(PathBuf),
    Env(String),
}

impl Secret {
    /// The secret `value` itself (from code or the `secret` TOML key).
    pub fn new(value: impl Into<String>) -> Self {
        Self(Source::Value(value.into()))
    }

    /// The contents of the file at `path`, without a trailing newline,
    /// read when the node starts (the `secret_file` TOML key).
    pub fn from_file(path: impl Into<PathBuf>) -> Self {
        Self(Source::File(path.into()))
    }

    /// The value of the environment variable `var`, read when the node
    /// starts (the `secret_env` TOML key).
    pub fn from_env(var: impl Into<String>) -> Self {
        Self(Source::Env(var.into()))
    }

    /// A secret as the `secret` TOML key gives it: `"env:VAR"` is the
    /// environment variable `VAR`, `"file:PATH"` the file at `PATH`, and
    /// anything else the secret itself.
    pub fn parse(text: &str) -> Self {
        if let Some(var) = text.strip_prefix("env:") {
            Self::from_env(var)
        } else if let Some(path) = text.strip_prefix("file:") {
            Self::from_file(path)
        } else {
            Self::new(text)
        }
    }

    /// The length of a secret given inline.
    pub(crate) fn inline_len(&self) -> Option<usize> {
        match &self.0 {
            Source::Value(value) => Some(value.len()),
            Source::File(_) | Source::Env(_) => None,
        }
    }

    /// Checks what can be checked without reading a file or the
    /// environment: a secret given inline is long enough and not a sample.
    pub(crate) fn check(&self, min: usize) -> Result<(), String> {
        match &self.0 {
            Source::Value(_) => self.load(min).map(|_| ()),
            Source::File(path) if path.as_os_str().is_empty() => {
                Err("a file path after `file:`".into())
            }
            Source::Env(var) if var.is_empty() => Err("a variable name after `env:`".into()),
            Source::File(_) | Source::Env(_) => Ok(()),
        }
    }

    /// The secret's bytes, at least `min` of them, or why they cannot be
    /// had.
    pub(crate) fn load(&self, min: usize) -> Result<Vec<u8>, String> {
        let bytes = match &self.0 {
            Source::Value(value) => value.as_bytes().to_vec(),
            Source::File(path) => {
                let file = std::fs::File::open(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let mut bytes = Vec::new();
                file.take(MAX_SECRET_FILE + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                if bytes.len() as u64 > MAX_SECRET_FILE {
                    return Err(format!(
                        "{} is larger than {MAX_SECRET_FILE} bytes: not a secret file",
                        path.display()
                    ));
                }
                while matches!(bytes.last(), Some(b'\n' | b'\r')) {
                    bytes.pop();
                }
                bytes
            }
            Source::Env(var) => std::env::var(var)
                .map_err(|e| format!("environment variable {var}: {e}"))?
                .into_bytes(),
        };
        if bytes.len() < min {
            return Err(format!("at least {min} bytes"));
        }
        if SAMPLES.iter().any(|s| s.as_bytes() == bytes.as_slice()) {
            return Err(
                "a sample secret from courier's examples; generate your own (for example `openssl rand -base64 32`)"
                    .into(),
            );
        }
        Ok(bytes)
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(Self::parse(&text))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Source::Value(_) => f.write_str("Secret(<redacted>)"),
            Source::File(path) => write!(f, "Secret(file {})", path.display()),
            Source::Env(var) => write!(f, "Secret(env {var})"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn debug_never_prints_the_value() {
        let secret = Secret::new("hunter2-hunter2-hunter2");
        let printed = format!("{secret:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }

    #[test]
    fn a_file_is_read_without_its_trailing_newline_and_a_huge_one_is_refused() {
        let dir = std::env::temp_dir().join(format!("courier-secret-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, "from-a-file-0123456789\n").unwrap();
        let parsed = Secret::parse(&format!("file:{}", path.display()));
        assert_eq!(parsed, Secret::from_file(&path));
        assert_eq!(parsed.load(16).unwrap(), b"from-a-file-0123456789");
        std::fs::write(&path, vec![b'x'; 5000]).unwrap();
        assert!(Secret::from_file(&path).load(16).is_err());
        assert!(Secret::from_file(dir.join("absent")).load(16).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_environment_variable_is_read_when_loaded() {
        // PATH is set wherever tests run; setting a variable needs unsafe.
        let path = std::env::var("PATH").unwrap();
        let secret = Secret::parse("env:PATH");
        assert_eq!(secret, Secret::from_env("PATH"));
        assert_eq!(secret.load(0).unwrap(), path.as_bytes());
        let absent = Secret::parse("env:COURIER_SURELY_UNSET_VARIABLE");
        assert!(absent.check(16).is_ok(), "not read before the node starts");
        assert!(absent.load(16).is_err());
    }

    #[test]
    fn short_and_sample_secrets_are_refused() {
        for sample in SAMPLES {
            assert!(Secret::new(*sample).check(16).is_err(), "{sample}");
        }
        assert!(Secret::new("too short").check(16).is_err());
        assert!(Secret::new("a-real-secret-nobody-knows").check(16).is_ok());
    }
}
