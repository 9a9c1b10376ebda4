//! [`Refusal`]: a transport's report that a message it carried was
//! refused at the other end, published on the system's event stream.
//!
//! The core knows no transport. A transport (such as courier-remote) that
//! learns its peer refused a message publishes a `Refusal`; layers above
//! (such as at-least-once delivery, which parks a delivery refused for
//! good) subscribe to it without naming the transport.

use std::sync::Arc;

use crate::path::ActorPath;

/// A message a transport carried and the receiving end refused.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// Where the message was going.
    pub recipient: ActorPath,
    /// Its Rust type name (`std::any::type_name`), as the sender knew it.
    pub message_type: &'static str,
    /// Whether sending the same bytes again can never succeed (they do not
    /// decode there, or are too large), as opposed to a refusal that may
    /// heal (no such actor yet, a type the peer does not know yet).
    pub permanent: bool,
    /// What the receiving end said.
    pub detail: String,
    /// The message as the transport encoded it, so that a subscriber can
    /// tell which message it was (with the transport's own decoding).
    pub payload: Arc<[u8]>,
}
