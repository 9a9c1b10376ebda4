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

    /// Called while a [`ReplyTo`](crate::ReplyTo) is encoded, with a
    /// function that abandons the request: given why (the peer's rejection,
    /// "peer unreachable", …), it ends the ask at once with
    /// [`Error::Refused`](crate::Error::Refused) carrying that reason, and
    /// stops the short-lived actor waiting for the reply. A transport calls
    /// it when the message carrying the `ReplyTo` is refused or never sent.
    /// By default nothing is kept and the ask waits for its timeout.
    fn abandon_with(&self, abandon: Abandon) {
        drop(abandon);
    }
}

/// Ends an ask whose request was refused or never sent, with the reason
/// (see [`RefCodec::abandon_with`]).
pub type Abandon = Box<dyn FnOnce(&str) + Send>;

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

/// The asking node's side of a reply that crosses nodes: a short-lived actor
/// that takes the reply as a message and completes the ask. It stops after
/// the reply, or after [`REPLY_WINDOW`] at the latest.
struct ReplyForwarder<R> {
    /// Shared with the request's [`Abandon`], which may end the ask first.
    tx: Arc<std::sync::Mutex<Option<crate::actor_ref::Answer<R>>>>,
}

/// How long a reply from another node can take before it is dropped (the
/// asker's own timeout normally ends the wait much earlier).
const REPLY_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);

impl<R: Send + 'static> crate::Actor for ReplyForwarder<R> {
    type Msg = R;

    async fn handle(
        &mut self,
        value: R,
        ctx: &mut crate::Context<Self>,
    ) -> Result<(), crate::BoxError> {
        if let Some(tx) = crate::sync::lock(&self.tx).take() {
            let _ = tx.send(Ok(value));
        }
        ctx.stop();
        Ok(())
    }
}

impl<R: Send + 'static> Serialize for crate::ReplyTo<R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use crate::actor_ref::ReplyInner;
        use serde::ser::Error as _;
        let codec = current()
            .ok_or_else(|| S::Error::custom("a ReplyTo can only be encoded by a transport"))?;
        match self.inner.take() {
            Some(ReplyInner::Local(tx)) => {
                // The reply comes back as a message to a forwarder here.
                let slot = Arc::new(std::sync::Mutex::new(Some(tx)));
                let held = Arc::clone(&slot);
                let forwarder = codec
                    .system()
                    .spawn(crate::Props::new(move || ReplyForwarder {
                        tx: Arc::clone(&held),
                    }))
                    .map_err(|e| S::Error::custom(format!("cannot receive the reply: {e}")))?;
                let path = codec.export(forwarder.path());
                let abandoned = forwarder.clone();
                codec.abandon_with(Box::new(move |reason: &str| {
                    if let Some(tx) = crate::sync::lock(&slot).take() {
                        let _ = tx.send(Err(reason.to_owned()));
                    }
                    abandoned.stop();
                }));
                tokio::spawn(async move {
                    tokio::time::sleep(REPLY_WINDOW).await;
                    forwarder.stop();
                });
                serializer.serialize_str(&path)
            }
            Some(ReplyInner::Remote(asker)) => {
                let path = asker.path().as_str().to_owned();
                self.inner.set(Some(ReplyInner::Remote(asker)));
                serializer.serialize_str(&path)
            }
            None => Err(S::Error::custom("this ReplyTo was already sent on")),
        }
    }
}

impl<'de, R: Send + 'static> Deserialize<'de> for crate::ReplyTo<R> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let asker = ActorRef::<R>::deserialize(deserializer)?;
        Ok(crate::ReplyTo {
            inner: std::cell::Cell::new(Some(crate::actor_ref::ReplyInner::Remote(asker))),
        })
    }
}
