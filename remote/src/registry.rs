//! [`Registry`]: the message types a node can receive and send, each under
//! a manifest, and the receiving end of the wire: bytes to frames to local
//! actors, with a typed [`Rejection`] for every way the input can be bad.
//!
//! Nothing here panics on input: a frame that is too large or does not
//! decode is rejected as a whole; inside a good frame, each envelope is
//! delivered or rejected on its own (unknown manifest, undecodable payload,
//! unknown recipient, wrong message type), so one bad message never costs
//! the others or the stream.

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use courier_core::{ActorPath, ActorRef, ActorSystem, Error as CoreError, MessageSink};
use prost::Message as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::proto;
use crate::rejection::{Rejection, RejectionReason};
use crate::sink::{RemoteSink, RemoteTarget};

/// Decodes a payload of at most the given size and tells it to the actor at
/// the path.
type Dispatch =
    Box<dyn Fn(&ActorSystem, &ActorPath, &[u8], usize) -> Result<(), Deny> + Send + Sync>;

/// What went wrong for one envelope, before it is framed as a [`Rejection`].
struct Deny(RejectionReason, String);

/// Stops the actor at the path, which must take the registered type.
type Stop = Box<dyn Fn(&ActorSystem, &ActorPath) -> Result<(), Deny> + Send + Sync>;

struct Registered {
    manifest: String,
    dispatch: Dispatch,
    stop: Stop,
}

/// The recipient of an envelope as a local reference, or why not.
fn recipient<M: Send + 'static>(
    system: &ActorSystem,
    path: &ActorPath,
) -> Result<ActorRef<M>, Deny> {
    system.lookup_path::<M>(path).map_err(|e| match e {
        CoreError::WrongMessageType { .. } => Deny(RejectionReason::WrongType, e.to_string()),
        other => Deny(RejectionReason::UnknownRecipient, other.to_string()),
    })
}

/// The message types a node can receive and send, each under a manifest
/// (a stable name with a version, such as `"billing.Charge/1"`).
#[derive(Default)]
pub struct Registry {
    by_manifest: HashMap<String, Registered>,
    by_type: HashMap<TypeId, String>,
    makers: HashMap<TypeId, MakeRef>,
    locals: HashMap<TypeId, LocalRef>,
}

/// Looks up a local `ActorRef<M>` (boxed) by path.
type LocalRef =
    Box<dyn Fn(&ActorSystem, &ActorPath) -> Result<Box<dyn Any + Send>, CoreError> + Send + Sync>;

/// Builds an `ActorRef<M>` (boxed) for a remote target.
type MakeRef = Box<dyn Fn(&ActorSystem, RemoteTarget) -> Box<dyn Any + Send> + Send + Sync>;

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.by_manifest.keys()).finish()
    }
}

/// A manifest registered twice, or a type registered under two manifests.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot register {type_name} as {manifest:?}: {reason}")]
pub struct RegistryError {
    /// The manifest.
    pub manifest: String,
    /// The Rust type.
    pub type_name: &'static str,
    /// What clashes.
    pub reason: String,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `M` under `manifest`: received payloads with this manifest
    /// are decoded (serde + bincode 2, standard config, through
    /// `courier-codec` with its size limits) as `M` and told to the
    /// recipient, which must take `M`. A payload that claims more than it
    /// holds (a hostile length prefix, or another version of `M` on a node
    /// mid-upgrade) is rejected as undecodable, never allocated.
    ///
    /// # Errors
    ///
    /// [`RegistryError`] if the manifest is empty or taken, or `M` is
    /// already registered.
    pub fn register<M>(&mut self, manifest: &str) -> Result<&mut Self, RegistryError>
    where
        M: Serialize + DeserializeOwned + Send + 'static,
    {
        let clash = |reason: String| RegistryError {
            manifest: manifest.to_owned(),
            type_name: type_name::<M>(),
            reason,
        };
        if manifest.is_empty() {
            return Err(clash("the manifest is empty".into()));
        }
        if self.by_manifest.contains_key(manifest) {
            return Err(clash("the manifest is taken".into()));
        }
        if let Some(other) = self.by_type.get(&TypeId::of::<M>()) {
            return Err(clash(format!("the type is registered as {other:?}")));
        }
        let dispatch: Dispatch = Box::new(|system, path, payload, max_frame| {
            let message: M = courier_codec::decode(payload, max_frame).map_err(|e| {
                let reason = match e {
                    courier_codec::Error::TooLarge { .. } => RejectionReason::Oversized,
                    _ => RejectionReason::Undecodable,
                };
                Deny(reason, e.to_string())
            })?;
            recipient::<M>(system, path)?.tell(message);
            Ok(())
        });
        let stop: Stop = Box::new(|system, path| {
            recipient::<M>(system, path)?.stop();
            Ok(())
        });
        let owned = manifest.to_owned();
        let make: MakeRef = Box::new(move |system, target| {
            let sink: Arc<dyn MessageSink<M>> =
                Arc::new(RemoteSink::<M>::new(target, owned.clone()));
            Box::new(ActorRef::from_sink(system, sink))
        });
        self.makers.insert(TypeId::of::<M>(), make);
        let local: LocalRef = Box::new(|system, path| {
            system
                .lookup_path::<M>(path)
                .map(|r| Box::new(r) as Box<dyn Any + Send>)
        });
        self.locals.insert(TypeId::of::<M>(), local);
        self.by_type.insert(TypeId::of::<M>(), manifest.to_owned());
        self.by_manifest.insert(
            manifest.to_owned(),
            Registered {
                manifest: manifest.to_owned(),
                dispatch,
                stop,
            },
        );
        Ok(self)
    }

    /// The manifest `M` is registered under.
    pub fn manifest_of<M: 'static>(&self) -> Option<&str> {
        self.by_type.get(&TypeId::of::<M>()).map(String::as_str)
    }

    /// Decodes a frame received from a peer and delivers each of its
    /// envelopes to the local actor it names. Returns one result per
    /// envelope, in order; frames other than batches deliver nothing.
    ///
    /// # Errors
    ///
    /// A [`Rejection`] of the whole frame when it is larger than
    /// `max_frame` bytes or does not decode.
    pub fn dispatch_frame(
        &self,
        system: &ActorSystem,
        bytes: &[u8],
        max_frame: usize,
    ) -> Result<Vec<Result<(), Rejection>>, Rejection> {
        if bytes.len() > max_frame {
            return Err(Rejection::frame(
                RejectionReason::Oversized,
                format!("{} bytes, limit {max_frame}", bytes.len()),
            ));
        }
        let frame = proto::Frame::decode(bytes)
            .map_err(|e| Rejection::frame(RejectionReason::Undecodable, e.to_string()))?;
        Ok(match frame.kind {
            Some(proto::frame::Kind::Batch(batch)) => batch
                .envelopes
                .into_iter()
                .map(|envelope| self.dispatch(system, envelope, max_frame))
                .collect(),
            _ => Vec::new(),
        })
    }

    /// A boxed `ActorRef<M>` for the registered type with `type_id`.
    pub(crate) fn remote_ref(
        &self,
        system: &ActorSystem,
        type_id: TypeId,
        target: RemoteTarget,
    ) -> Option<Box<dyn Any + Send>> {
        self.makers.get(&type_id).map(|make| make(system, target))
    }

    /// A boxed local `ActorRef<M>` for the registered type with `type_id`.
    pub(crate) fn local_ref(
        &self,
        system: &ActorSystem,
        type_id: TypeId,
        path: &ActorPath,
    ) -> Option<Result<Box<dyn Any + Send>, CoreError>> {
        self.locals.get(&type_id).map(|lookup| lookup(system, path))
    }

    /// Delivers one envelope whose payload is at most `max_frame` bytes.
    pub(crate) fn dispatch(
        &self,
        system: &ActorSystem,
        envelope: proto::Envelope,
        max_frame: usize,
    ) -> Result<(), Rejection> {
        let reject = |reason, detail| Rejection {
            seq: envelope.seq,
            recipient: envelope.recipient.clone(),
            manifest: envelope.manifest.clone(),
            reason,
            detail,
        };
        let registered = self.by_manifest.get(&envelope.manifest).ok_or_else(|| {
            reject(
                RejectionReason::UnknownManifest,
                "no message type is registered under it".into(),
            )
        })?;
        let path = ActorPath::parse(&envelope.recipient)
            .map_err(|e| reject(RejectionReason::UnknownRecipient, e.to_string()))?;
        if path.scheme().is_some() {
            return Err(reject(
                RejectionReason::UnknownRecipient,
                "a remote envelope must name a local path".into(),
            ));
        }
        let done = if envelope.stop {
            (registered.stop)(system, &path)
        } else {
            (registered.dispatch)(system, &path, &envelope.payload, max_frame)
        };
        done.map_err(|Deny(reason, detail)| {
            reject(reason, format!("{detail} (as {})", registered.manifest))
        })
    }

    /// Encodes `message` as an envelope frame for `recipient` (a local path
    /// on the peer), for tests and for the transport.
    ///
    /// # Errors
    ///
    /// [`RegistryError`] if `M` is not registered or does not encode.
    pub fn encode_frame<M: Serialize + 'static>(
        &self,
        recipient: &str,
        seq: u64,
        message: &M,
    ) -> Result<Vec<u8>, RegistryError> {
        let manifest = self.manifest_of::<M>().ok_or_else(|| RegistryError {
            manifest: String::new(),
            type_name: type_name::<M>(),
            reason: "the type is not registered".into(),
        })?;
        let payload =
            courier_codec::encode(message, courier_codec::MAX_LEN).map_err(|e| RegistryError {
                manifest: manifest.to_owned(),
                type_name: type_name::<M>(),
                reason: format!("cannot encode: {e}"),
            })?;
        let frame = proto::Frame {
            kind: Some(proto::frame::Kind::Batch(proto::Batch {
                envelopes: vec![proto::Envelope {
                    recipient: recipient.to_owned(),
                    manifest: manifest.to_owned(),
                    payload: payload.into(),
                    seq,
                    stop: false,
                }],
            })),
        };
        Ok(frame.encode_to_vec())
    }
}
