//! courier-codec: the one binary codec courier uses for bytes that cross a
//! process boundary (the network, the disk), with a limit on every decode.
//!
//! Values are encoded with serde + bincode 2 (`standard()`: little-endian,
//! variable-length integers). bincode allocates what a length prefix claims
//! before it reads the data, so an unlimited decode of twelve hostile bytes
//! (or of a record written by an older shape of a type) can ask for
//! exabytes and abort the process. Here every decode runs under a memory
//! budget proportional to its input, and every failure is one typed
//! [`Error`], never a panic or an abort.
//!
//! Invariants:
//!
//! - Nothing longer than [`MAX_LEN`] (or the caller's smaller `max_len`) is
//!   encoded or decoded: [`Error::TooLarge`]. Whatever [`encode`] accepted,
//!   [`decode`] with the same `max_len` accepts too.
//! - A decode of `n` input bytes allocates at most its budget: `16 × n`
//!   rounded up to 64 KiB, 1 MiB, 16 MiB, 256 MiB or 1 GiB (see [`budget`]).
//!   Legitimate data never needs more (no bincode value decodes to more
//!   than 16 bytes per byte read: the worst is a one-byte `u128`), so the
//!   budget rejects only lies: [`Error::LimitExceeded`].
//! - Serde's own collections preallocate at most 1 MiB per collection
//!   whatever their length prefix says; a user type whose `Deserialize`
//!   preallocates from `size_hint` unchecked is outside this guarantee.
//!
//! # Examples
//!
//! ```
//! use courier::codec::{self, Error};
//!
//! let bytes = codec::encode(&("charge", 250u64), codec::MAX_LEN)?;
//! let back: (String, u64) = codec::decode(&bytes, codec::MAX_LEN)?;
//! assert_eq!(back, ("charge".to_owned(), 250));
//!
//! // A length prefix that claims 2^63 bytes is refused, not allocated.
//! let hostile = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0x80];
//! let refused = codec::decode::<String>(&hostile, codec::MAX_LEN);
//! assert!(matches!(refused, Err(Error::LimitExceeded { .. })));
//! # Ok::<(), Error>(())
//! ```

use std::any::type_name;

use bincode::config::standard;
use bincode::error::DecodeError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest encoding read or written: 64 MiB. Callers pass a smaller
/// `max_len` where they know one (a frame limit, for example).
pub const MAX_LEN: usize = 64 << 20;

/// The smallest decode budget, in bytes of decoded memory.
const MIN_BUDGET: usize = 64 << 10;

/// Decoded bytes allowed per input byte: a one-byte varint `u128` decodes
/// to 16 bytes, and nothing decodes to more.
const BYTES_PER_INPUT_BYTE: usize = 16;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a value could not be encoded or decoded.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input (or the encoding) is longer than the limit.
    #[error("{len} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A length prefix claims more memory than the input can honestly
    /// describe: garbage, or bytes of another type.
    #[error(
        "{len} bytes claim more than {budget} bytes of memory as a {type_name}: a length prefix is garbage"
    )]
    LimitExceeded {
        /// The type being decoded.
        type_name: &'static str,
        /// The input's length.
        len: usize,
        /// The memory budget of the decode.
        budget: usize,
    },
    /// The input ends before the value does.
    #[error("{len} bytes end before the {type_name} does")]
    Truncated {
        /// The type being decoded.
        type_name: &'static str,
        /// The input's length.
        len: usize,
    },
    /// The bytes after a whole value were not expected.
    #[error("{trailing} trailing bytes after a {type_name}")]
    TrailingBytes {
        /// The type decoded.
        type_name: &'static str,
        /// How many bytes were left.
        trailing: usize,
    },
    /// The bytes are not a valid encoding of the type (a bad enum tag,
    /// invalid UTF-8, a value its `Deserialize` refuses, …).
    #[error("not a valid {type_name}: {reason}")]
    Malformed {
        /// The type being decoded.
        type_name: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// The value cannot be serialized.
    #[error("cannot encode a {type_name}: {reason}")]
    Unencodable {
        /// The type being encoded.
        type_name: &'static str,
        /// What the encoder said.
        reason: String,
    },
}

/// Encodes `value`.
///
/// # Errors
///
/// [`Error::Unencodable`] if its `Serialize` fails, [`Error::TooLarge`] if
/// the encoding is longer than `max_len` (at most [`MAX_LEN`]).
pub fn encode<T: Serialize + ?Sized>(value: &T, max_len: usize) -> Result<Vec<u8>> {
    let limit = max_len.min(MAX_LEN);
    let bytes =
        bincode::serde::encode_to_vec(value, standard()).map_err(|e| Error::Unencodable {
            type_name: type_name::<T>(),
            reason: e.to_string(),
        })?;
    if bytes.len() > limit {
        return Err(Error::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    Ok(bytes)
}

/// How many bytes [`encode`] would produce for `value`, counted without
/// building them: for a caller that writes a length before the value and
/// the value straight after it, in one buffer, rather than encoding the
/// value and copying it into a second encoding.
///
/// # Examples
///
/// ```
/// use courier::codec;
///
/// let value = ("charge", 250u64);
/// let bytes = codec::encode(&value, codec::MAX_LEN)?;
/// assert_eq!(codec::encoded_len(&value)?, bytes.len());
/// # Ok::<(), codec::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Unencodable`] if its `Serialize` fails.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> Result<usize> {
    bincode::serde::encode_into_std_write(value, &mut std::io::sink(), standard()).map_err(|e| {
        Error::Unencodable {
            type_name: type_name::<T>(),
            reason: e.to_string(),
        }
    })
}

/// Decodes a `T` that fills all of `bytes`.
///
/// # Errors
///
/// [`Error::TooLarge`] if `bytes` is longer than `max_len` (at most
/// [`MAX_LEN`]); [`Error::LimitExceeded`], [`Error::Truncated`] or
/// [`Error::Malformed`] if they are not a `T`; [`Error::TrailingBytes`] if
/// a `T` ends before they do (they are then not what the caller thinks).
pub fn decode<T: DeserializeOwned>(bytes: &[u8], max_len: usize) -> Result<T> {
    let (value, read) = decode_prefix::<T>(bytes, max_len)?;
    if read != bytes.len() {
        return Err(Error::TrailingBytes {
            type_name: type_name::<T>(),
            trailing: bytes.len() - read,
        });
    }
    Ok(value)
}

/// Decodes a `T` from the start of `bytes`, and says how many bytes it took
/// (for a header followed by something else).
///
/// # Errors
///
/// As [`decode`], but for trailing bytes.
pub fn decode_prefix<T: DeserializeOwned>(bytes: &[u8], max_len: usize) -> Result<(T, usize)> {
    let limit = max_len.min(MAX_LEN);
    if bytes.len() > limit {
        return Err(Error::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    let budget = budget(bytes.len());
    // The limit is a type parameter of bincode's configuration, so each
    // budget is its own instantiation: five of them cover up to MAX_LEN.
    let decoded = match budget {
        B0 => with_budget::<T, B0>(bytes),
        B1 => with_budget::<T, B1>(bytes),
        B2 => with_budget::<T, B2>(bytes),
        B3 => with_budget::<T, B3>(bytes),
        _ => with_budget::<T, B4>(bytes),
    };
    decoded.map_err(|e| {
        let type_name = type_name::<T>();
        match e {
            DecodeError::LimitExceeded => Error::LimitExceeded {
                type_name,
                len: bytes.len(),
                budget,
            },
            DecodeError::UnexpectedEnd { .. } => Error::Truncated {
                type_name,
                len: bytes.len(),
            },
            other => Error::Malformed {
                type_name,
                reason: other.to_string(),
            },
        }
    })
}

const B0: usize = MIN_BUDGET;
const B1: usize = B0 * 16;
const B2: usize = B1 * 16;
const B3: usize = B2 * 16;
const B4: usize = MAX_LEN * BYTES_PER_INPUT_BYTE;

/// The memory budget of a decode of `len` bytes: `16 × len` rounded up to
/// 64 KiB, 1 MiB, 16 MiB, 256 MiB or 1 GiB (for up to [`MAX_LEN`]).
pub fn budget(len: usize) -> usize {
    let needed = len.saturating_mul(BYTES_PER_INPUT_BYTE);
    [B0, B1, B2, B3]
        .into_iter()
        .find(|b| needed <= *b)
        .unwrap_or(B4)
}

fn with_budget<T: DeserializeOwned, const N: usize>(
    bytes: &[u8],
) -> std::result::Result<(T, usize), DecodeError> {
    bincode::serde::decode_from_slice(bytes, standard().with_limit::<N>())
}

#[cfg(test)]
mod tests;
