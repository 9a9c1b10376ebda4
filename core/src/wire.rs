//! References inside messages that cross a process boundary.
//!
//! An [`ActorRef`] is a handle to a mailbox, which means nothing to another
//! process. When a transport encodes a message, it runs the encoding inside
//! [`with_ref_codec`], and each `ActorRef` in the message is written as a
//! path the peer can reach (a local `/user/…` path becomes, say,
//! `courier://node@host:port/user/…`). When it decodes, each path is looked
//! up again in the receiving node's [`ActorSystem`], which resolves remote
//! paths back through the transport. Outside `with_ref_codec`, an
//! `ActorRef` serializes as its path and refuses to deserialize.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::actor_ref::ActorRef;
use crate::path::ActorPath;
use crate::system::ActorSystem;

/// What a transport provides while it encodes or decodes messages.
pub trait RefCodec: Send + Sync + 'static {
    /// The path under which the local actor at `path` is reached from
    /// other nodes.
    fn export(&self, path: &ActorPath) -> String;

    /// The system in which decoded paths are looked up.
    fn system(&self) -> &ActorSystem;
}

thread_local! {
    static CODEC: RefCell<Vec<Arc<dyn RefCodec>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` (an encoding or decoding) with `codec` translating the
/// references it meets.
pub fn with_ref_codec<T>(codec: &Arc<dyn RefCodec>, f: impl FnOnce() -> T) -> T {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            CODEC.with(|c| {
                c.borrow_mut().pop();
            });
        }
    }
    CODEC.with(|c| c.borrow_mut().push(Arc::clone(codec)));
    let _pop = Pop;
    f()
}

fn current() -> Option<Arc<dyn RefCodec>> {
    CODEC.with(|c| c.borrow().last().cloned())
}

impl<M: Send + 'static> Serialize for ActorRef<M> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match current() {
            Some(codec) if self.path().is_local() => {
                serializer.serialize_str(&codec.export(self.path()))
            }
            _ => serializer.serialize_str(self.path().as_str()),
        }
    }
}

impl<'de, M: Send + 'static> Deserialize<'de> for ActorRef<M> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PathVisitor;
        impl Visitor<'_> for PathVisitor {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an actor path")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
                Ok(v.to_owned())
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
                Ok(v)
            }
        }
        let path = deserializer.deserialize_string(PathVisitor)?;
        let codec = current().ok_or_else(|| {
            de::Error::custom(format!(
                "cannot decode a reference to {path}: references are decoded by a transport"
            ))
        })?;
        codec
            .system()
            .lookup::<M>(&path)
            .map_err(|e| de::Error::custom(format!("cannot resolve {path}: {e}")))
    }
}
