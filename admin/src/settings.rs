//! [`AdminSettings`]: who may repair through the admin endpoint.

use serde::Deserialize;

/// The `[admin]` section: which callers may repair.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AdminSettings {
    /// The identities (DNS names in the caller's certificate, as a node's
    /// certificate names the node) allowed to requeue and purge parked
    /// deliveries. Empty (the default): the endpoint is read-only.
    #[serde(default)]
    pub repair: Vec<String>,
}

impl AdminSettings {
    /// Read-only: nobody may repair.
    pub fn read_only() -> Self {
        Self::default()
    }

    /// Lets the callers whose certificates name `identity` repair too.
    #[must_use]
    pub fn allow_repair(mut self, identity: impl Into<String>) -> Self {
        self.repair.push(identity.into());
        self
    }
}
