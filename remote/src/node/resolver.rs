//! [`NodeResolver`] and [`NodeCodec`]: the two directions of the mapping
//! between `courier://node@host:port/user/…` paths and references.
//!
//! The resolver turns a path into a reference for
//! [`ActorSystem::lookup`]: one of this node's own actors directly, another
//! node's through its peer connection. The codec writes local references
//! inside outgoing messages as paths under this node's address, so the
//! receiving node can resolve them back.

use std::any::{Any, TypeId};
use std::sync::{Arc, Weak};

use courier_core::{ActorPath, ActorSystem, RefCodec, Resolver};

use super::{SCHEME, Shared};
use crate::sink::RemoteTarget;

/// Resolves `courier://node@host:port/user/…` paths.
pub(crate) struct NodeResolver {
    pub(crate) shared: Weak<Shared>,
}

impl Resolver for NodeResolver {
    fn resolve(
        &self,
        system: &ActorSystem,
        path: &ActorPath,
        message_type: TypeId,
        type_name: &'static str,
    ) -> courier_core::Result<Box<dyn Any + Send>> {
        let fail = |reason: String| courier_core::Error::Resolver {
            path: path.clone(),
            source: reason.into(),
        };
        let shared = self
            .shared
            .upgrade()
            .ok_or_else(|| fail("the node has shut down".into()))?;
        let (node, host_port, local) = split(path.as_str()).map_err(fail)?;
        if node == shared.settings.node && host_port == shared.address.to_string() {
            // One of ours: no need to go through the network.
            let local = ActorPath::parse(local).map_err(|e| fail(e.to_string()))?;
            return shared
                .registry
                .local_ref(system, message_type, &local)
                .ok_or_else(|| {
                    fail(format!(
                        "{type_name} is not registered with this node's registry"
                    ))
                })?
                .map_err(|e| fail(e.to_string()));
        }
        if let Some(from) = inbound_peer() {
            // A path inside a peer's payload: only nodes already known, or
            // the sending peer itself, are dialled.
            if node != from && !shared.is_peer(node, host_port) {
                return Err(fail(format!(
                    "{node}@{host_port} is not a known peer: a path in a message from {} may name only nodes this node already talks to, or the sender itself",
                    crate::refusals::bounded(&from, 64)
                )));
            }
        }
        let peer = shared.peer(node, host_port);
        shared
            .registry
            .remote_ref(
                system,
                message_type,
                RemoteTarget {
                    path: path.clone(),
                    recipient: local.to_owned(),
                    peer,
                    shared: Arc::downgrade(&shared),
                },
            )
            .ok_or_else(|| {
                fail(format!(
                    "{type_name} is not registered with this node's registry"
                ))
            })
    }
}

thread_local! {
    /// The authenticated peer whose envelopes this thread is decoding, if
    /// it is: paths decoded meanwhile come from that peer.
    static INBOUND_PEER: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with paths resolved as coming from the peer `node`.
pub(crate) fn from_peer<T>(node: &str, f: impl FnOnce() -> T) -> T {
    struct Reset(Option<String>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let previous = self.0.take();
            INBOUND_PEER.with(|p| *p.borrow_mut() = previous);
        }
    }
    let previous = INBOUND_PEER.with(|p| p.borrow_mut().replace(node.to_owned()));
    let _reset = Reset(previous);
    f()
}

fn inbound_peer() -> Option<String> {
    INBOUND_PEER.with(|p| p.borrow().clone())
}

/// `courier://node@host:port/user/x` → (`node`, `host:port`, `/user/x`).
fn split(path: &str) -> Result<(&str, &str, &str), String> {
    let rest = path
        .strip_prefix(SCHEME)
        .and_then(|rest| rest.strip_prefix("://"))
        .ok_or_else(|| format!("{path:?} is not a {SCHEME}:// path"))?;
    let slash = rest
        .find('/')
        .ok_or_else(|| format!("{path:?} has no actor path"))?;
    let (authority, local) = rest.split_at(slash);
    let (node, host_port) = authority
        .split_once('@')
        .ok_or_else(|| format!("{path:?}: the authority must be node@host:port"))?;
    if node.is_empty() || host_port.is_empty() {
        return Err(format!("{path:?}: the authority must be node@host:port"));
    }
    Ok((node, host_port, local))
}

/// A node's reference codec: local paths are exported under the node's
/// address; decoded paths are looked up in its system.
pub(crate) struct NodeCodec {
    pub(crate) system: ActorSystem,
    pub(crate) prefix: String,
}

impl RefCodec for NodeCodec {
    fn export(&self, path: &ActorPath) -> String {
        format!("{}{}", self.prefix, path.as_str())
    }

    fn system(&self) -> &ActorSystem {
        &self.system
    }

    fn abandon_with(&self, abandon: courier_core::Abandon) {
        crate::sink::keep_abandon(abandon);
    }
}
