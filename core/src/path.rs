//! Actor paths: the stable, printable address of an actor.
//!
//! A local path looks like `/user/billing/invoices`: `/user` is the root of
//! every actor a program spawns, and each further segment is a child of the
//! one before it. A path with a scheme, such as
//! `courier://billing-node@127.0.0.1:7101/user/billing`, names an actor that
//! a registered [`Resolver`](crate::Resolver) knows how to reach.
//!
//! Durable layers store paths, never in-memory handles, so that a destination
//! can be resolved again after a restart. Invariant: an `ActorPath` is always
//! well formed; the only ways to make one validate their input.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};

/// The root under which every user actor lives.
pub(crate) const USER_ROOT: &str = "/user";

/// The address of an actor, cheap to clone.
///
/// # Examples
///
/// ```
/// use courier::ActorPath;
///
/// let path = ActorPath::parse("/user/billing/invoices")?;
/// assert_eq!(path.name(), "invoices");
/// assert_eq!(path.parent().map(|p| p.to_string()), Some("/user/billing".to_string()));
/// assert!(path.scheme().is_none());
/// # Ok::<(), courier::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActorPath(Arc<str>);

impl ActorPath {
    /// Parses and validates a path.
    ///
    /// A local path starts with `/` and has non-empty segments; a path with a
    /// scheme (`scheme://authority/segments`) is accepted as long as its
    /// scheme and segments are well formed, and is handed to the resolver
    /// registered for that scheme on lookup.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] naming the path and what is wrong with it.
    pub fn parse(path: &str) -> Result<Self> {
        let invalid = |reason: &'static str| Error::InvalidPath {
            path: path.to_owned(),
            reason,
        };
        let segments = match path.split_once("://") {
            Some((scheme, rest)) => {
                if scheme.is_empty()
                    || !scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
                {
                    return Err(invalid(
                        "the scheme must be ASCII letters, digits, '+', '-' or '.'",
                    ));
                }
                let (authority, segments) = match rest.find('/') {
                    Some(i) => rest.split_at(i),
                    None => {
                        return Err(invalid(
                            "a path with a scheme needs segments after its authority",
                        ));
                    }
                };
                if authority.is_empty() {
                    return Err(invalid("the authority after the scheme is empty"));
                }
                segments
            }
            None => path,
        };
        let Some(segments) = segments.strip_prefix('/') else {
            return Err(invalid("a local path starts with '/'"));
        };
        if segments.is_empty() {
            return Err(invalid("a path needs at least one segment"));
        }
        for segment in segments.split('/') {
            check_segment(segment).map_err(invalid)?;
        }
        Ok(Self(Arc::from(path)))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment: the actor's own name.
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The scheme of a non-local path (`courier` in `courier://node@host/user/a`).
    pub fn scheme(&self) -> Option<&str> {
        self.0.split_once("://").map(|(scheme, _)| scheme)
    }

    /// Whether this path names an actor in this process (it has no scheme).
    pub fn is_local(&self) -> bool {
        self.scheme().is_none()
    }

    /// The parent's path, or `None` for a root segment such as `/user`.
    pub fn parent(&self) -> Option<ActorPath> {
        let local_start = match self.0.split_once("://") {
            Some((scheme, rest)) => scheme.len() + 3 + rest.find('/').unwrap_or(rest.len()),
            None => 0,
        };
        let cut = self.0.rfind('/')?;
        if cut <= local_start {
            return None;
        }
        Some(Self(Arc::from(&self.0[..cut])))
    }

    /// The path of a child called `name`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] if `name` is not a valid actor name.
    pub fn child(&self, name: &str) -> Result<ActorPath> {
        validate_name(name)?;
        Ok(self.child_unchecked(name))
    }

    pub(crate) fn child_unchecked(&self, name: &str) -> ActorPath {
        let mut s = String::with_capacity(self.0.len() + 1 + name.len());
        s.push_str(&self.0);
        s.push('/');
        s.push_str(name);
        Self(Arc::from(s))
    }

    pub(crate) fn user_root() -> ActorPath {
        Self(Arc::from(USER_ROOT))
    }
}

fn check_segment(segment: &str) -> std::result::Result<(), &'static str> {
    if segment.is_empty() {
        return Err("a path segment is empty");
    }
    if segment
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '#' || c == '?')
    {
        return Err("a path segment contains whitespace, a control character, '#' or '?'");
    }
    Ok(())
}

/// Checks a user-chosen actor name: non-empty, one segment, and not starting
/// with `$`, which is reserved for generated names.
pub(crate) fn validate_name(name: &str) -> Result<()> {
    let invalid = |reason: &'static str| Error::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.contains('/') {
        return Err(invalid("a name cannot contain '/'"));
    }
    if name.starts_with('$') {
        return Err(invalid(
            "names starting with '$' are reserved for generated names",
        ));
    }
    check_segment(name).map_err(invalid)
}

impl fmt::Display for ActorPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ActorPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorPath({})", self.0)
    }
}

impl AsRef<str> for ActorPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ActorPath {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_parse_and_navigate() {
        let p = ActorPath::parse("/user/a/b").expect("valid");
        assert_eq!(p.name(), "b");
        assert_eq!(p.parent().expect("parent").as_str(), "/user/a");
        assert_eq!(
            p.parent()
                .and_then(|p| p.parent())
                .expect("grandparent")
                .as_str(),
            "/user"
        );
        assert!(ActorPath::parse("/user").expect("valid").parent().is_none());
        assert!(p.is_local());
    }

    #[test]
    fn remote_paths_keep_their_authority() {
        let p = ActorPath::parse("courier://billing@127.0.0.1:7101/user/billing").expect("valid");
        assert_eq!(p.scheme(), Some("courier"));
        assert_eq!(p.name(), "billing");
        assert_eq!(
            p.parent().expect("parent").as_str(),
            "courier://billing@127.0.0.1:7101/user"
        );
        assert!(p.parent().and_then(|p| p.parent()).is_none());
    }

    #[test]
    fn malformed_paths_are_rejected() {
        for bad in [
            "",
            "user/a",
            "/",
            "/user//a",
            "/user/a b",
            "://x/a",
            "courier://",
            "courier:///a",
            "courier://node",
            "/user/a#1",
        ] {
            assert!(
                matches!(ActorPath::parse(bad), Err(Error::InvalidPath { .. })),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn names_are_single_segments_without_reserved_prefix() {
        assert!(validate_name("billing").is_ok());
        assert!(validate_name("$1").is_err());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name("").is_err());
        assert!(validate_name("a b").is_err());
    }
}
