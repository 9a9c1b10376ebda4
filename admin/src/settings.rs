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

    /// Checks every identity is a name a certificate can carry: 1 to 253
    /// ASCII letters, digits, `-`, `_` or `.`.
    ///
    /// # Errors
    ///
    /// The first identity that is not, and why.
    pub fn validate(&self) -> Result<(), String> {
        for identity in &self.repair {
            let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
            if identity.is_empty() || identity.len() > 253 || !identity.chars().all(fine) {
                return Err(format!(
                    "{identity:?} is no certificate name: use 1 to 253 ASCII letters, digits, `-`, `_` or `.`"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::AdminSettings;

    #[test]
    fn identities_must_be_certificate_names() {
        assert!(AdminSettings::read_only().validate().is_ok());
        assert!(
            AdminSettings::read_only()
                .allow_repair("ops.example-1")
                .validate()
                .is_ok()
        );
        for bad in ["", "two words", "a/b", &"x".repeat(254)] {
            let e = AdminSettings::read_only().allow_repair(bad).validate();
            assert!(e.is_err(), "{bad:?} accepted");
        }
    }
}
