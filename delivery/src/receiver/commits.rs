//! The inbox's commit task: concurrent commits of one inbox share one
//! write (one flush).
//!
//! A commit is queued; the first commit that finds no task running starts
//! one, which takes everything queued, plans each delivery on top of the
//! one before it (from the inbox as it is in memory, that is durable),
//! writes their effects and the net change of the inbox records as one
//! atomic write, and only once that write returned `Ok` applies the change
//! in memory and acks them, in the order they were queued. Then it takes
//! what was queued meanwhile, until nothing is. One group is written at a
//! time, so each is planned from what the one before left durable (plan,
//! write, apply). A failed write fails every commit in it: none is applied
//! in memory or acked, and their redeliveries are new again.
//!
//! The task runs apart from the callers, so a caller that gives up (drops
//! its future) never leaves the others of its group without an answer.

use std::collections::HashMap;
use std::sync::Arc;

use courier_core::ActorRef;
use courier_persistence::WriteBatch;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::{Core, lock};
use crate::envelope::{Ack, Delivery, DeliveryId, SenderId};
use crate::error::{Error, Result, copy_store_error};
use crate::inbox::{Receipt, Window};
use crate::records::inbox_alias_ns;

/// A commit queued by [`DedupInbox::submit`](crate::DedupInbox::submit):
/// resolves once the inbox's write that took it returned, as
/// [`DedupInbox::process`](crate::DedupInbox::process) does. Dropping it
/// changes nothing: the delivery is written, applied and acked all the
/// same (or, if the write fails, neither applied nor acked, which the
/// commit task logs at WARN; the sender then redelivers it).
#[must_use = "the commit happens anyway; await it to learn whether it was durable"]
#[derive(Debug)]
pub struct Submitted {
    answer: oneshot::Receiver<Result<Receipt>>,
    owner: String,
}

impl Submitted {
    /// One that is already decided (a duplicate found before queueing).
    pub(crate) fn ready(owner: &str, receipt: Receipt) -> Self {
        let (tell, answer) = oneshot::channel();
        let _ = tell.send(Ok(receipt));
        Self {
            answer,
            owner: owner.to_owned(),
        }
    }
}

impl Submitted {
    /// One that failed before it was queued (a refused delivery).
    pub(crate) fn failed(owner: &str, error: Error) -> Self {
        let (tell, answer) = oneshot::channel();
        let _ = tell.send(Err(error));
        Self {
            answer,
            owner: owner.to_owned(),
        }
    }
}

impl std::future::Future for Submitted {
    type Output = Result<Receipt>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Receipt>> {
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.answer).poll(cx) {
            std::task::Poll::Ready(Ok(result)) => std::task::Poll::Ready(result),
            std::task::Poll::Ready(Err(_)) => std::task::Poll::Ready(Err(Error::Store {
                owner: this.owner.clone(),
                source: courier_persistence::Error::Closed,
            })),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

/// Commits waiting for the commit task, and whether it runs.
#[derive(Default)]
pub(super) struct Queue {
    items: Vec<Queued>,
    running: bool,
}

/// One queued commit.
pub(super) struct Queued {
    sender: SenderId,
    id: DeliveryId,
    settled_below: DeliveryId,
    expected_inbox: Option<Uuid>,
    /// The effect's records, written with the inbox records.
    effect: WriteBatch,
    ack: Ack,
    ack_to: ActorRef<Ack>,
    /// The caller's span: the commit's logs belong to its delivery.
    span: tracing::Span,
    done: oneshot::Sender<Result<Receipt>>,
}

/// A group planned, to write.
struct Group {
    batch: WriteBatch,
    planned: Vec<Planned>,
    /// The net change of each sender's window.
    changes: Vec<(SenderId, crate::inbox::InboxChange)>,
    adopted: Vec<Uuid>,
}

/// A queued commit as its group planned it.
struct Planned {
    item: Queued,
    receipt: Receipt,
    /// A duplicate of a delivery already durable (not of one planned in
    /// the same group): it is acked even if the group's write fails.
    durable: bool,
}

impl Core {
    /// Queues `delivery` (with its `effect` records) for the inbox's next
    /// write and waits for that write: [`Receipt::New`] once it is durable,
    /// applied and acked; [`Receipt::Duplicate`] (acked, not applied) if it
    /// was recorded already.
    pub(crate) async fn commit<M>(
        self: &Arc<Self>,
        delivery: &Delivery<M>,
        effect: WriteBatch,
        span: tracing::Span,
    ) -> Result<Receipt> {
        self.submit(delivery, effect, span).await
    }

    /// Queues `delivery` for the inbox's next write at once; the returned
    /// future says how it went (it need not be awaited: the write, the
    /// apply and the ack happen all the same).
    pub(crate) fn submit<M>(
        self: &Arc<Self>,
        delivery: &Delivery<M>,
        effect: WriteBatch,
        span: tracing::Span,
    ) -> Submitted {
        let (done, answer) = oneshot::channel();
        let mut ack = delivery.ack();
        ack.inbox = Some(self.identity);
        let item = Queued {
            sender: delivery.sender.clone(),
            id: delivery.id,
            settled_below: delivery.settled_below,
            expected_inbox: delivery.expected_inbox,
            effect,
            ack,
            ack_to: delivery.ack_to.clone(),
            span,
            done,
        };
        let start = {
            let mut queue = courier_core::sync::lock(&self.queue);
            queue.items.push(item);
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            tokio::spawn(Arc::clone(self).run());
        }
        Submitted {
            answer,
            owner: self.name.clone(),
        }
    }

    /// The commit task: groups until the queue is empty.
    async fn run(self: Arc<Self>) {
        // Held until the queue is empty: an opening of this inbox made
        // meanwhile reads what these commits wrote.
        let _turn = Arc::clone(&self.turn).lock_owned().await;
        loop {
            let items = {
                let mut queue = courier_core::sync::lock(&self.queue);
                if queue.items.is_empty() {
                    queue.running = false;
                    return;
                }
                std::mem::take(&mut queue.items)
            };
            self.commit_group(items).await;
        }
    }

    /// Plans a group from the inbox in memory; `None` if it may not be
    /// written now (every commit in it was answered). Marks the inbox
    /// busy until the write returns: no other change is planned from this
    /// state (`prepare` is refused meanwhile).
    fn plan_group(&self, items: Vec<Queued>) -> Option<Group> {
        let mut state = lock(&self.state);
        if state.outstanding {
            for item in items {
                let _ = item.done.send(Err(Error::InboxBusy {
                    receiver: self.name.clone(),
                }));
            }
            return None;
        }
        // Per sender: its window as durable, and as planned so far.
        let mut windows: HashMap<SenderId, (Window, Window)> = HashMap::new();
        let mut batch = WriteBatch::new();
        let mut adopted: Vec<Uuid> = Vec::new();
        let mut planned = Vec::with_capacity(items.len());
        for mut item in items {
            let adopt = match self.admit(&mut state, &item.sender, item.expected_inbox) {
                Ok(adopt) => adopt,
                Err(e) => {
                    let _ = item.done.send(Err(e));
                    continue;
                }
            };
            let (start, plan) = windows.entry(item.sender.clone()).or_insert_with(|| {
                let window = state
                    .inbox
                    .window(&item.sender)
                    .cloned()
                    .unwrap_or_default();
                (window.clone(), window)
            });
            if plan.is_done(item.id.get()) {
                let durable = start.is_done(item.id.get());
                planned.push(Planned {
                    item,
                    receipt: Receipt::Duplicate,
                    durable,
                });
                continue;
            }
            let change = plan.plan(item.id, item.settled_below);
            plan.apply(&change);
            batch.extend(std::mem::take(&mut item.effect));
            if let Some(alias) = adopt.filter(|a| !adopted.contains(a)) {
                adopted.push(alias);
            }
            planned.push(Planned {
                item,
                receipt: Receipt::New,
                durable: false,
            });
        }
        let changes: Vec<_> = windows
            .into_iter()
            .map(|(sender, (start, plan))| {
                let change = start.diff(&plan);
                (sender, change)
            })
            .filter(|(_, change)| !change.is_empty())
            .collect();
        for (sender, change) in &changes {
            batch.extend(self.writes(sender, change));
        }
        for alias in &adopted {
            batch = batch.put(
                inbox_alias_ns(&self.name),
                alias.as_bytes().to_vec(),
                Vec::new(),
            );
        }
        state.outstanding = true;
        Some(Group {
            batch,
            planned,
            changes,
            adopted,
        })
    }

    async fn commit_group(&self, items: Vec<Queued>) {
        let Some(Group {
            batch,
            planned,
            changes,
            adopted,
        }) = self.plan_group(items)
        else {
            return;
        };
        let written = if batch.is_empty() {
            Ok(())
        } else {
            self.journal.write(batch).await
        };
        let mut state = lock(&self.state);
        state.outstanding = false;
        match written {
            Ok(()) => {
                for (sender, change) in &changes {
                    state.inbox.apply(sender, change);
                }
                state.aliases.extend(adopted);
                let applied = planned.iter().filter(|p| p.receipt == Receipt::New).count();
                state.metrics.applied.increment(applied as u64);
                let duplicates = planned.len() - applied;
                state.metrics.duplicates.increment(duplicates as u64);
                let kept = state.inbox.kept();
                state.metrics.kept.set(kept as f64);
                drop(state);
                for Planned { item, receipt, .. } in planned {
                    let _entered = item.span.enter();
                    match receipt {
                        Receipt::New => tracing::debug!("delivery applied; acking"),
                        Receipt::Duplicate => tracing::debug!("duplicate suppressed"),
                    }
                    item.ack_to.tell(item.ack);
                    let _ = item.done.send(Ok(receipt));
                }
            }
            Err(e) => {
                drop(state);
                tracing::warn!(receiver = %self.name, deliveries = planned.len(), error = %e, "inbox write failed: none of its deliveries is applied or acked");
                for Planned {
                    item,
                    receipt,
                    durable,
                } in planned
                {
                    if durable {
                        item.ack_to.tell(item.ack);
                        let _ = item.done.send(Ok(receipt));
                    } else {
                        let _ = item.done.send(Err(Error::Store {
                            owner: self.name.clone(),
                            source: copy_store_error(&e),
                        }));
                    }
                }
            }
        }
    }
}
