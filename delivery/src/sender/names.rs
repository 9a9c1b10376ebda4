//! Sender names are unique per actor system: two live deliverers under one
//! name would share one outbox and hand out the same ids twice.
//!
//! A claim is taken before the outbox is read and released when the start
//! fails or is dropped; once started, it lasts as long as the deliverer's
//! timer actor lives (a restart of the owner stops that actor before the
//! owner starts again, so a restarted owner takes its name back).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use courier_core::{ActorPath, ActorRef, ActorSystem};

use super::redeliverer::Signal;
use crate::error::{Error, Result};

enum Holder {
    /// A start is under way.
    Starting,
    /// Started: live while its timer actor is.
    Running(ActorRef<Signal>),
}

struct Claim {
    token: u64,
    owner: ActorPath,
    holder: Holder,
}

impl Claim {
    fn is_live(&self) -> bool {
        match &self.holder {
            Holder::Starting => true,
            Holder::Running(timer) => !timer.is_terminated(),
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

/// Claims `name` for the actor at `owner`.
pub(super) fn claim(system: &ActorSystem, name: &str, owner: &ActorPath) -> Result<NameGuard> {
    let names = system.extension::<SenderNames>();
    let mut claims = courier_core::sync::lock(&names.claims);
    if let Some(existing) = claims.get(name).filter(|c| c.is_live()) {
        return Err(Error::SenderNameTaken {
            name: name.to_owned(),
            owner: existing.owner.clone(),
        });
    }
    let token = names.tokens.fetch_add(1, Ordering::Relaxed);
    claims.insert(
        name.to_owned(),
        Claim {
            token,
            owner: owner.clone(),
            holder: Holder::Starting,
        },
    );
    Ok(NameGuard {
        system: system.clone(),
        name: name.to_owned(),
        token,
        done: false,
    })
}

impl NameGuard {
    /// The start succeeded: the claim lasts while `timer` lives.
    pub(super) fn started(mut self, timer: ActorRef<Signal>) {
        self.done = true;
        let names = self.system.extension::<SenderNames>();
        let mut claims = courier_core::sync::lock(&names.claims);
        if let Some(claim) = claims.get_mut(&self.name).filter(|c| c.token == self.token) {
            claim.holder = Holder::Running(timer);
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
