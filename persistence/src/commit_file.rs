//! The commit record kept outside the engine: the highest commit number the
//! store has acknowledged, so that an engine that comes back shorter than
//! what was acknowledged is noticed on open.
//!
//! Format (40 bytes, fixed): two slots of 20 bytes, each `magic "CCMT" ++
//! format version (u32) ++ commit (u64) ++ crc32 of the 16 bytes before it`,
//! all big-endian. Commit `n` is written into slot `n % 2` in place and made
//! durable with `fdatasync`, so a torn write damages only the slot being
//! written and the other still holds the previous commit: the record never
//! claims more than was acknowledged, and never less than the commit before
//! the last. The file is created (or replaced) whole through a temporary
//! file, `fsync`, `rename` and an `fsync` of the directory.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use courier_core::sync;

use crate::error::{Error, Result};

/// The name of the commit record in a sled store's directory.
pub const COMMIT_FILE: &str = "courier.commit";

const MAGIC: &[u8; 4] = b"CCMT";
const VERSION: u32 = 1;
const SLOT: usize = 20;
const LEN: usize = 2 * SLOT;

/// The commit record at one path.
#[derive(Debug)]
pub(crate) struct CommitFile {
    path: PathBuf,
    /// The open file and the highest commit written to it.
    state: Mutex<(File, u64)>,
}

fn slot(commit: u64) -> [u8; SLOT] {
    let mut out = [0u8; SLOT];
    out[..4].copy_from_slice(MAGIC);
    out[4..8].copy_from_slice(&VERSION.to_be_bytes());
    out[8..16].copy_from_slice(&commit.to_be_bytes());
    let crc = crc32fast::hash(&out[..16]);
    out[16..].copy_from_slice(&crc.to_be_bytes());
    out
}

fn parse_slot(bytes: &[u8]) -> Option<u64> {
    let (body, crc) = bytes.split_at_checked(16)?;
    let crc = u32::from_be_bytes(crc.try_into().ok()?);
    if crc32fast::hash(body) != crc || &body[..4] != MAGIC {
        return None;
    }
    if u32::from_be_bytes(body[4..8].try_into().ok()?) != VERSION {
        return None;
    }
    Some(u64::from_be_bytes(body[8..16].try_into().ok()?))
}

fn unreadable(path: &Path, reason: impl Into<String>) -> Error {
    Error::CommitRecord {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

impl CommitFile {
    /// The commit the record at `path` holds: `Ok(None)` if there is no
    /// file.
    ///
    /// # Errors
    ///
    /// [`Error::CommitRecord`] if it cannot be read, has the wrong size, or
    /// neither slot passes its checksum.
    pub(crate) fn read(path: &Path) -> Result<Option<u64>> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unreadable(path, format!("cannot open it: {e}"))),
        };
        // One byte more than the format allows, so a longer file is noticed
        // without reading all of it.
        let mut bytes = Vec::with_capacity(LEN + 1);
        file.take(LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| unreadable(path, format!("cannot read it: {e}")))?;
        if bytes.len() != LEN {
            return Err(unreadable(
                path,
                format!("it has the wrong size (expected {LEN} bytes)"),
            ));
        }
        let (a, b) = bytes.split_at(SLOT);
        match (parse_slot(a), parse_slot(b)) {
            (Some(a), Some(b)) => Ok(Some(a.max(b))),
            (Some(one), None) | (None, Some(one)) => Ok(Some(one)),
            (None, None) => Err(unreadable(path, "both of its slots fail their checksum")),
        }
    }

    /// Creates (or replaces) the record at `path` holding `commit`, durably,
    /// and opens it for updates.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] with the I/O error.
    pub(crate) fn create(path: &Path, commit: u64) -> Result<Self> {
        // Not `CommitRecord`: the record is fine, the disk refuses to write.
        let fail = |what: &str, e: io::Error| {
            let context = format!(
                "cannot {what} for the commit record {}: {e}",
                path.display()
            );
            Error::Storage(Box::new(io::Error::new(e.kind(), context)))
        };
        let tmp = path.with_extension("commit.tmp");
        let mut bytes = [0u8; LEN];
        bytes[..SLOT].copy_from_slice(&slot(commit));
        bytes[SLOT..].copy_from_slice(&slot(commit));
        let mut file = File::create(&tmp).map_err(|e| fail("create a temporary file", e))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| fail("write a temporary file", e))?;
        std::fs::rename(&tmp, path).map_err(|e| fail("rename the temporary file", e))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| fail("sync its directory", e))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| fail("reopen it", e))?;
        Ok(Self {
            path: path.to_owned(),
            state: Mutex::new((file, commit)),
        })
    }

    /// Where the record is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Records `commit` as acknowledged, durably (blocking I/O). A commit
    /// not above the one recorded changes nothing.
    ///
    /// # Errors
    ///
    /// The I/O error.
    pub(crate) fn record(&self, commit: u64) -> io::Result<()> {
        let mut state = sync::lock(&self.state);
        let (file, recorded) = &mut *state;
        if commit <= *recorded {
            return Ok(());
        }
        let offset = (commit % 2) * SLOT as u64;
        file.write_all_at(&slot(commit), offset)
            .and_then(|()| file.sync_data())?;
        *recorded = commit;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_a_reread_and_a_torn_slot_falls_back_one_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(COMMIT_FILE);
        assert_eq!(CommitFile::read(&path).expect("read"), None);
        let file = CommitFile::create(&path, 3).expect("create");
        assert_eq!(CommitFile::read(&path).expect("read"), Some(3));
        file.record(4).expect("record");
        file.record(5).expect("record");
        file.record(2).expect("an older commit is ignored");
        assert_eq!(CommitFile::read(&path).expect("read"), Some(5));
        // Commit 5 lives in slot 1: tear it, and the record says 4.
        let mut bytes = std::fs::read(&path).expect("bytes");
        bytes[SLOT + 9] ^= 0x10;
        std::fs::write(&path, &bytes).expect("write");
        assert_eq!(CommitFile::read(&path).expect("read"), Some(4));
        bytes[3] ^= 0x01;
        std::fs::write(&path, &bytes).expect("write");
        let both = CommitFile::read(&path);
        assert!(matches!(both, Err(Error::CommitRecord { .. })), "{both:?}");
        std::fs::write(&path, [0u8; LEN + 1]).expect("write");
        let long = CommitFile::read(&path);
        assert!(matches!(long, Err(Error::CommitRecord { .. })), "{long:?}");
    }
}
