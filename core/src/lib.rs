//! courier-core: the at-most-once actor runtime under courier.
//!
//! Actors are spawned into an [`ActorSystem`] from [`Props`], handle one
//! message type each, and are reached through cheap [`ActorRef`]s. Delivery
//! here is at-most-once, as in Akka and Proto.Actor: a message that cannot be
//! enqueued becomes a [`DeadLetter`] on the system's [`EventStream`]. The
//! durable layers of courier build at-least-once and effectively-once
//! delivery on top.
//!
//! Guarantees:
//! - messages from one sender to one actor are handled in send order;
//! - an actor handles one message at a time;
//! - system messages (stop, watch, failure notices) overtake user messages;
//! - every message a local send accepts is either handled or becomes a dead
//!   letter.
//!
//! An actor keeps its one message type and can still be reached as an
//! `ActorRef<T>` for other types through message adapters
//! ([`Props::with_adapter`], [`Context::message_adapter`]), found by its
//! own path: that is how an existing actor becomes a destination for a
//! layer that sends another type.
//!
//! This crate has no knowledge of storage or networks; transports plug in
//! through [`MessageSink`] and [`Resolver`].

mod actor;
mod actor_ref;
mod adapter;
mod context;
mod dead_letter;
mod dead_message;
mod deadlines;
mod error;
mod event_stream;
mod extensions;
mod mailbox;
mod path;
mod refusal;
mod runtime;
mod supervision;
pub mod sync;
mod system;
mod system_channel;
mod watcher;
mod wire;

pub use actor::{Actor, IntoProps, Props, Terminated};
pub use actor_ref::{ActorRef, BoxFuture, MessageSink, ReplyTo};
pub use context::{Context, MAX_TIMER_DELAY, TimerKey};
pub use dead_letter::{DeadLetter, DeadLetterReason};
pub use dead_message::DeadMessage;
pub use error::{BoxError, Error, Result, SendError, TryTellError};
pub use event_stream::EventStream;
pub use extensions::Extensions;
pub use mailbox::Mailbox;
pub use path::ActorPath;
pub use refusal::Refusal;
pub use supervision::{ChildFailure, Directive, Failure, SupervisorStrategy};
pub use system::{ActorSystem, Resolver, SystemConfig};
pub use watcher::{Watcher, WatcherId};
pub use wire::{Abandon, RefCodec, with_ref_codec};

/// Re-exported so users of the event stream can name its receiver and errors.
pub use tokio::sync::broadcast;
