//! The store's I/O thread: where the writer's engine applies and flushes
//! run when the engine may block, so that no tokio worker ever waits for
//! the disk.
//!
//! A plain thread rather than `spawn_blocking`: a flush can hang for good
//! (sled's, after an I/O error), and a runtime waits for its blocking
//! tasks when it shuts down, but not for a thread of its own. Jobs run one
//! at a time in the order the writer sends them, which is the order the
//! engines need anyway (sled's apply waits for its flush, fjall's commit
//! and persist share the journal's lock).

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::error::{Error, Result};

type Job = Box<dyn FnOnce() + Send>;

/// A handle to the I/O thread; the thread ends when every handle is gone.
#[derive(Clone)]
pub(super) struct Io {
    jobs: mpsc::Sender<Job>,
}

impl Io {
    /// Starts the thread.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the thread cannot be started.
    pub(super) fn spawn() -> Result<Self> {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("courier-store-io".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    // The job's reply handle went with the panic: its
                    // waiter learns that the job failed.
                    if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
                        tracing::error!("the storage engine panicked on the store's I/O thread");
                    }
                }
            })
            .map_err(|e| Error::Storage(Box::new(e)))?;
        Ok(Self { jobs })
    }

    /// Runs `job` on the thread and waits for its result.
    ///
    /// # Errors
    ///
    /// A description if the thread is gone or the job panicked.
    pub(super) async fn run<T, F>(&self, job: F) -> std::result::Result<T, &'static str>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(job());
            }))
            .map_err(|_| "the store's I/O thread is gone")?;
        rx.await
            .map_err(|_| "the storage engine panicked on the store's I/O thread")
    }
}
