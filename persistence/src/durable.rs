//! Choosing the embedded engine at run time: [`EngineKind`] names one, and
//! [`DurableEngine`] is whichever of them was opened, so that a
//! configuration file (`[persistence] engine = "sled" | "fjall"`) can pick
//! it without the program naming an engine type.

use std::fmt;
#[cfg(any(feature = "sled", feature = "fjall"))]
use std::path::Path;
use std::str::FromStr;

#[cfg(any(feature = "sled", feature = "fjall"))]
use crate::engine::{Engine, EngineOp, Entry, Visitor};
use crate::error::{Error, Result};
#[cfg(feature = "fjall")]
use crate::fjall_engine::FjallEngine;
#[cfg(feature = "sled")]
use crate::sled_engine::SledEngine;

/// An embedded durable engine, by name.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// sled 0.34 (feature `sled`, the default).
    #[default]
    Sled,
    /// fjall 3 (feature `fjall`).
    Fjall,
}

impl EngineKind {
    /// Every engine courier knows, compiled in or not.
    pub const ALL: [EngineKind; 2] = [EngineKind::Sled, EngineKind::Fjall];

    /// Its name in configuration: `"sled"` or `"fjall"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sled => "sled",
            Self::Fjall => "fjall",
        }
    }

    /// Whether this build has the engine (its feature is on).
    pub fn available(self) -> bool {
        match self {
            Self::Sled => cfg!(feature = "sled"),
            Self::Fjall => cfg!(feature = "fjall"),
        }
    }

    /// The engines this build has, in [`ALL`](Self::ALL)'s order.
    pub fn compiled() -> Vec<EngineKind> {
        Self::ALL.into_iter().filter(|k| k.available()).collect()
    }

    /// An error unless this build has the engine.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming the feature to turn on.
    pub fn check_available(self) -> Result<()> {
        match self.available() {
            true => Ok(()),
            false => Err(missing(self)),
        }
    }
}

fn missing(kind: EngineKind) -> Error {
    Error::Invalid {
        what: "engine",
        reason: format!(
            "the {0} engine is not compiled in: enable courier's `{0}` feature",
            kind.name()
        ),
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EngineKind {
    type Err = Error;

    /// `"sled"` or `"fjall"`.
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| Error::Invalid {
                what: "engine",
                reason: format!("{s:?} is not an engine (expected \"sled\" or \"fjall\")"),
            })
    }
}

/// Whichever embedded engine was opened (see [`EngineKind`]); the store
/// over it is a [`DurableStore`](crate::DurableStore).
#[cfg(any(feature = "sled", feature = "fjall"))]
pub struct DurableEngine(Inner);

#[cfg(any(feature = "sled", feature = "fjall"))]
enum Inner {
    #[cfg(feature = "sled")]
    Sled(SledEngine),
    #[cfg(feature = "fjall")]
    Fjall(FjallEngine),
}

/// Calls `$call` on the engine inside, whichever it is.
#[cfg(any(feature = "sled", feature = "fjall"))]
macro_rules! each {
    ($self:expr, $engine:ident => $call:expr) => {
        match $self {
            #[cfg(feature = "sled")]
            Inner::Sled($engine) => $call,
            #[cfg(feature = "fjall")]
            Inner::Fjall($engine) => $call,
        }
    };
}

#[cfg(any(feature = "sled", feature = "fjall"))]
impl DurableEngine {
    /// Opens (or creates) a `kind` engine in directory `path`, with a block
    /// cache of `cache_capacity` bytes (`None`: the engine's default, 1 GiB
    /// for sled, 32 MiB for fjall).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] if this build lacks the engine; the engine's own
    /// errors when opening ([`SledEngine::open`], [`FjallEngine::open`]).
    pub fn open(kind: EngineKind, path: &Path, cache_capacity: Option<u64>) -> Result<Self> {
        let inner = match kind {
            #[cfg(feature = "sled")]
            EngineKind::Sled => Inner::Sled(match cache_capacity {
                Some(bytes) => SledEngine::with_cache_capacity(path, bytes)?,
                None => SledEngine::open(path)?,
            }),
            #[cfg(feature = "fjall")]
            EngineKind::Fjall => Inner::Fjall(match cache_capacity {
                Some(bytes) => FjallEngine::with_cache_capacity(path, bytes)?,
                None => FjallEngine::open(path)?,
            }),
            #[allow(unreachable_patterns)]
            other => return Err(missing(other)),
        };
        Ok(Self(inner))
    }

    /// Which engine this is.
    pub fn kind(&self) -> EngineKind {
        match &self.0 {
            #[cfg(feature = "sled")]
            Inner::Sled(_) => EngineKind::Sled,
            #[cfg(feature = "fjall")]
            Inner::Fjall(_) => EngineKind::Fjall,
        }
    }

    /// The sled engine, if this is one.
    #[cfg(feature = "sled")]
    pub fn as_sled(&self) -> Option<&SledEngine> {
        match &self.0 {
            Inner::Sled(e) => Some(e),
            #[cfg(feature = "fjall")]
            Inner::Fjall(_) => None,
        }
    }

    /// The fjall engine, if this is one.
    #[cfg(feature = "fjall")]
    pub fn as_fjall(&self) -> Option<&FjallEngine> {
        match &self.0 {
            Inner::Fjall(e) => Some(e),
            #[cfg(feature = "sled")]
            Inner::Sled(_) => None,
        }
    }
}

#[cfg(any(feature = "sled", feature = "fjall"))]
impl Engine for DurableEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        each!(&self.0, e => e.get(key))
    }

    fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<Entry>> {
        each!(&self.0, e => e.scan(start, end, limit, reverse))
    }

    fn visit(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        each!(&self.0, e => e.visit(start, end, limit, visit))
    }

    fn apply(&self, ops: Vec<EngineOp>) -> Result<()> {
        each!(&self.0, e => e.apply(ops))
    }

    fn flush(&self) -> Result<()> {
        each!(&self.0, e => e.flush())
    }

    fn name(&self) -> &'static str {
        each!(&self.0, e => e.name())
    }

    fn blocking(&self) -> bool {
        each!(&self.0, e => e.blocking())
    }

    fn close(self) -> Result<()> {
        each!(self.0, e => e.close())
    }
}
