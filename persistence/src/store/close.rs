//! Closing a store: stop the writer after what was sent before, wait for
//! readers to let go, release the engine on a thread of its own, and give
//! up waiting after a bound instead of hanging.

use std::sync::Arc;
use std::time::Duration;

use courier_core::sync;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Pending, Request, Store};
use crate::engine::Engine;
use crate::error::{Error, Result};

/// How long [`Store::close`] waits, at most.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);

/// Drops a handle to `engine` where it cannot block a runtime worker: on a
/// thread of its own if the engine blocks (sled's drop flushes, and after an
/// I/O error it may never return). The thread is not joined, so neither a
/// worker nor the runtime's shutdown waits for it.
pub(crate) fn release<E: Engine>(engine: Arc<E>) {
    if !engine.blocking() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("courier-store-release".into())
        .spawn(move || drop(engine));
    if let Err(e) = spawned {
        // The closure, and the engine with it, was dropped here.
        tracing::error!(error = %e, "cannot start a thread to release the store's engine");
    }
}

impl<E: Engine> Store<E> {
    /// Closes the store: lets every write sent before finish (flushed and
    /// answered), stops the writer task, waits for reads in flight, and
    /// releases the engine (for sled: its files and their lock, so the same
    /// directory can be opened again in this process). Every clone of the
    /// store is closed: later calls fail with [`Error::Closed`]. Closing a
    /// closed store does nothing. Waits at most 10 seconds; see
    /// [`close_within`](Self::close_within).
    ///
    /// A poisoned store closes too: that is how it is reopened after the
    /// disk is fixed.
    ///
    /// # Errors
    ///
    /// [`Error::CloseFailed`] if the writer, a reader or the engine did not
    /// let go in time (the engine may keep its files locked until the
    /// process exits); the engine's own error while closing a store that is
    /// not poisoned.
    ///
    /// # Cancel safety
    ///
    /// Once called, the store is closed even if the future is dropped: the
    /// engine is then released in the background.
    pub async fn close(&self) -> Result<()> {
        self.close_within(CLOSE_WITHIN).await
    }

    /// [`close`](Self::close), waiting at most `limit`.
    ///
    /// # Errors
    ///
    /// As [`close`](Self::close).
    ///
    /// # Cancel safety
    ///
    /// As [`close`](Self::close).
    pub async fn close_within(&self, limit: Duration) -> Result<()> {
        let taken = sync::write(&self.shared.engine).take();
        let Some(engine) = taken else {
            return Ok(());
        };
        let deadline = Instant::now() + limit;
        let failed = |reason: String| {
            let error = Error::CloseFailed {
                waited: limit,
                reason,
            };
            tracing::error!(%error, "the store did not close");
            error
        };
        let guard = Releaser::new(engine);
        let (done, stopped) = oneshot::channel();
        let send = self.shared.requests.send(Pending {
            request: Request::Close,
            done,
        });
        let sent = match tokio::time::timeout_at(deadline, send).await {
            Ok(sent) => sent,
            Err(_) => {
                return Err(failed(
                    "the writer's queue stayed full (the engine is not taking writes)".into(),
                ));
            }
        };
        // A failed send means the writer is gone already.
        if sent.is_ok() && tokio::time::timeout_at(deadline, stopped).await.is_err() {
            return Err(failed(
                "the writer task is still waiting for the engine to flush".into(),
            ));
        }
        let engine = guard
            .wait_for_sole_owner(deadline)
            .await
            .map_err(|others| {
                failed(format!(
                    "{others} other handle(s) to the engine are still in use (reads in flight, \
                 or handles from `Store::engine`)"
                ))
            })?;
        let (tx, released) = oneshot::channel();
        std::thread::Builder::new()
            .name("courier-store-close".into())
            .spawn(move || {
                let _ = tx.send(engine.close());
            })
            .map_err(|e| failed(format!("cannot start a thread to close the engine: {e}")))?;
        match tokio::time::timeout_at(deadline, released).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => match self.poisoned() {
                Some(reason) => {
                    tracing::warn!(error = %e, %reason, "the poisoned store's engine closed with an error");
                    Ok(())
                }
                None => Err(e),
            },
            Ok(Err(_)) => Err(failed("the engine panicked while closing".into())),
            Err(_) => Err(failed(
                "the engine did not let go of its files (sled can block forever in its drop \
                 after an I/O error)"
                    .into(),
            )),
        }
    }
}

/// A handle to the engine that is released off the runtime when dropped:
/// the writer's (which the runtime may drop at shutdown, mid-commit, or
/// which a commit job drops on the I/O thread), and the one a closing store
/// holds until the engine is closed or closing gives up.
pub(super) struct Releaser<E: Engine>(Option<Arc<E>>);

impl<E: Engine> Releaser<E> {
    pub(super) fn new(engine: Arc<E>) -> Self {
        Self(Some(engine))
    }

    /// The engine. Only a closing store takes it out, and it never lends
    /// its handle, so this never sees `None`.
    fn get(&self) -> Option<&E> {
        self.0.as_deref()
    }

    /// The engine itself once this is the only handle left, or how many
    /// others remain at `deadline`.
    async fn wait_for_sole_owner(mut self, deadline: Instant) -> std::result::Result<E, usize> {
        loop {
            let Some(engine) = self.0.take() else {
                return Err(0);
            };
            match Arc::try_unwrap(engine) {
                Ok(engine) => return Ok(engine),
                Err(shared) => {
                    let others = Arc::strong_count(&shared) - 1;
                    self.0 = Some(shared);
                    if Instant::now() >= deadline {
                        return Err(others);
                    }
                    // Reads are short and the writer lets go right after
                    // answering: poll rather than add a notification to the
                    // read path.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }
}

impl<E: Engine> Drop for Releaser<E> {
    fn drop(&mut self) {
        if let Some(engine) = self.0.take() {
            release(engine);
        }
    }
}

impl<E: Engine> std::ops::Deref for Releaser<E> {
    type Target = E;

    fn deref(&self) -> &E {
        match self.get() {
            Some(engine) => engine,
            // Unreachable by construction (see `get`); a panic here beats
            // reading from an engine that was handed over.
            None => unreachable!("an engine handle used after it was taken"),
        }
    }
}
