//! [`Rejection`]: what the receiving node says about a message it did not
//! deliver, and the mapping of its [`RejectionReason`] to and from the wire.
//!
//! The reason decides what the sender may do next: a permanent one (the
//! bytes do not decode there, or are too large) can never succeed by
//! resending, the others may heal.

use std::fmt;

use crate::proto;
use crate::proto::rejection::Reason;

/// Why a message was not delivered on the receiving node.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectionReason {
    /// No message type is registered under the envelope's manifest.
    UnknownManifest,
    /// The payload (or the whole frame) does not decode.
    Undecodable,
    /// The frame is larger than the limit.
    Oversized,
    /// No actor lives at the recipient path.
    UnknownRecipient,
    /// The actor there takes another message type.
    WrongType,
}

impl RejectionReason {
    /// Whether sending the same bytes again can never succeed: they do not
    /// decode at the receiving node, or are too large for it. The others may
    /// heal (the actor may start, the type may be registered).
    pub fn is_permanent(self) -> bool {
        matches!(self, Self::Undecodable | Self::Oversized)
    }

    /// Its name as a metrics label (`snake_case`, one of five).
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::UnknownManifest => "unknown_manifest",
            Self::Undecodable => "undecodable",
            Self::Oversized => "oversized",
            Self::UnknownRecipient => "unknown_recipient",
            Self::WrongType => "wrong_type",
        }
    }

    /// The reason a peer sent, as its wire number.
    pub(crate) fn from_proto(reason: i32) -> Self {
        match Reason::try_from(reason) {
            Ok(Reason::UnknownManifest) => Self::UnknownManifest,
            Ok(Reason::Undecodable) => Self::Undecodable,
            Ok(Reason::Oversized) => Self::Oversized,
            Ok(Reason::UnknownRecipient) => Self::UnknownRecipient,
            Ok(Reason::WrongType) => Self::WrongType,
            // A reason this version does not know: treat it as permanent.
            Ok(Reason::Unspecified) | Err(_) => Self::Undecodable,
        }
    }

    fn into_proto(self) -> Reason {
        match self {
            Self::UnknownManifest => Reason::UnknownManifest,
            Self::Undecodable => Reason::Undecodable,
            Self::Oversized => Reason::Oversized,
            Self::UnknownRecipient => Reason::UnknownRecipient,
            Self::WrongType => Reason::WrongType,
        }
    }
}

impl fmt::Display for RejectionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownManifest => "unknown manifest",
            Self::Undecodable => "undecodable",
            Self::Oversized => "oversized",
            Self::UnknownRecipient => "unknown recipient",
            Self::WrongType => "wrong message type",
        })
    }
}

/// A message (or a whole frame) the receiving node refused, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rejected message {seq} for {recipient:?} ({manifest:?}): {reason}: {detail}")]
pub struct Rejection {
    /// The sender's sequence number of the message (0 for a whole frame).
    pub seq: u64,
    /// The recipient path as sent (empty for a whole frame).
    pub recipient: String,
    /// The manifest as sent (empty for a whole frame).
    pub manifest: String,
    /// Why.
    pub reason: RejectionReason,
    /// Details for logs.
    pub detail: String,
}

impl Rejection {
    pub(crate) fn into_proto(self) -> proto::Rejection {
        proto::Rejection {
            seq: self.seq,
            recipient: self.recipient,
            manifest: self.manifest,
            reason: self.reason.into_proto() as i32,
            detail: self.detail,
        }
    }

    /// The rejection of a whole frame, which names no message.
    pub(crate) fn frame(reason: RejectionReason, detail: String) -> Self {
        Self {
            seq: 0,
            recipient: String::new(),
            manifest: String::new(),
            reason,
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_crosses_the_wire_unchanged() {
        use RejectionReason::*;
        for reason in [
            UnknownManifest,
            Undecodable,
            Oversized,
            UnknownRecipient,
            WrongType,
        ] {
            let wire = reason.into_proto() as i32;
            assert_eq!(RejectionReason::from_proto(wire), reason);
        }
    }

    #[test]
    fn a_reason_this_version_does_not_know_is_permanent() {
        for wire in [Reason::Unspecified as i32, 1000, -1] {
            assert!(RejectionReason::from_proto(wire).is_permanent(), "{wire}");
        }
    }
}
