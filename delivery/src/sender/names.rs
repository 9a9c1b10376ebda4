//! Sender names are unique per actor system: two live deliverers under one
//! name would share one outbox and hand out the same ids twice.
//!
//! A claim is taken before the outbox is read and released when the start
//! fails or is dropped; once started, it lasts as long as the deliverer's
//! writer task runs. That task ends after the deliverer's timer actor has
//! stopped, once every write of the deliverer has landed or failed (a
//! restart of the owner stops that actor before the owner starts again, so
//! a restarted owner takes its name back, waiting for the writes of its
//! previous incarnation first: read before they land, its outbox would
//! hand out their ids again).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use courier_core::{ActorPath, ActorRef, ActorSystem};
use tokio::sync::watch;

use super::redeliverer::Signal;
use crate::error::{Error, Result};

/// How long a start waits, at most, for a stopped deliverer of the same
/// name to finish its writes.
const STOPPING_WITHIN: Duration = Duration::from_secs(10);

enum Holder {
    /// A start is under way.
    Starting,
    /// Started: its timer actor, and its writer task (closed when it ends).
    Running(ActorRef<Signal>, watch::Receiver<()>),
}

struct Claim {
    token: u64,
    owner: ActorPath,
    holder: Holder,
}

/// Whether a claimed name is in use.
enum Use {
    /// Starting, or its timer actor lives.
    Live,
    /// Its timer actor stopped; its writer has writes to finish, and
    /// closes this when it has.
    Stopping(watch::Receiver<()>),
    /// Free.
    Over,
}

impl Claim {
    fn state(&self) -> Use {
        match &self.holder {
            Holder::Starting => Use::Live,
            Holder::Running(timer, _) if !timer.is_terminated() => Use::Live,
            Holder::Running(_, writer) if writer.has_changed().is_ok() => {
                Use::Stopping(writer.clone())
            }
            Holder::Running(..) => Use::Over,
        }
    }
}

/// The sender names in use in one actor system (a system extension).
#[derive(Default)]
pub(super) struct SenderNames {
    claims: Mutex<HashMap<String, Claim>>,
    tokens: AtomicU64,
}

/// A claim on a name while a start is under way; released when dropped
/// unless [`NameGuard::started`] made it last.
pub(super) struct NameGuard {
    system: ActorSystem,
    name: String,
    token: u64,
    done: bool,
}

/// Claims `name` for the actor at `owner`, once a stopped deliverer of
/// that name has finished its writes (waiting at most
/// [`STOPPING_WITHIN`]).
pub(super) async fn claim(
    system: &ActorSystem,
    name: &str,
    owner: &ActorPath,
) -> Result<NameGuard> {
    let deadline = tokio::time::Instant::now() + STOPPING_WITHIN;
    let names = system.extension::<SenderNames>();
    loop {
        let (mut stopping, holder) = {
            let mut claims = courier_core::sync::lock(&names.claims);
            let state = claims.get(name).map(|c| (c.state(), c.owner.clone()));
            match state {
                Some((Use::Live, holder)) => {
                    return Err(Error::SenderNameTaken {
                        name: name.to_owned(),
                        owner: holder,
                    });
                }
                Some((Use::Stopping(writer), holder)) => (writer, holder),
                Some((Use::Over, _)) | None => {
                    let token = names.tokens.fetch_add(1, Ordering::Relaxed);
                    claims.insert(
                        name.to_owned(),
                        Claim {
                            token,
                            owner: owner.clone(),
                            holder: Holder::Starting,
                        },
                    );
                    return Ok(NameGuard {
                        system: system.clone(),
                        name: name.to_owned(),
                        token,
                        done: false,
                    });
                }
            }
        };
        // Nothing is ever sent on it: it returns once the writer is gone.
        if tokio::time::timeout_at(deadline, stopping.changed())
            .await
            .is_err()
        {
            return Err(Error::SenderNameTaken {
                name: name.to_owned(),
                owner: holder,
            });
        }
    }
}

impl NameGuard {
    /// The start succeeded: the claim lasts while `timer` lives, and then
    /// until `writer` closes.
    pub(super) fn started(mut self, timer: ActorRef<Signal>, writer: watch::Receiver<()>) {
        self.done = true;
        let names = self.system.extension::<SenderNames>();
        let mut claims = courier_core::sync::lock(&names.claims);
        if let Some(claim) = claims.get_mut(&self.name).filter(|c| c.token == self.token) {
            claim.holder = Holder::Running(timer, writer);
        }
    }
}

impl Drop for NameGuard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let names = self.system.extension::<SenderNames>();
        let mut claims = courier_core::sync::lock(&names.claims);
        if claims
            .get(&self.name)
            .is_some_and(|c| c.token == self.token)
        {
            claims.remove(&self.name);
        }
    }
}
