//! The ledger receiver: a deduplicating receiver whose effect is a durable
//! ledger, so that a test can count how often each message was applied.

use std::marker::PhantomData;
use std::sync::Arc;

use courier_core::{Actor, BoxError, Context, Props};
use courier_delivery::{DedupInbox, Delivery, Receipt};
use courier_persistence::{Journal, WriteBatch};

/// The ledger's namespace in the journal's key-value space.
const NAMESPACE: &str = "applied";
/// Entries per scan page when reading the ledger back.
const PAGE: usize = 1000;

/// A message that names the number the ledger records for it.
pub trait Numbered {
    /// The number to record.
    fn number(&self) -> u64;
}

impl Numbered for u64 {
    fn number(&self) -> u64 {
        *self
    }
}

/// Applies each delivery once: its ledger entry (the number and a unique
/// suffix, so that a second application shows as a second entry) and its
/// inbox record in one atomic write, then the ack. A failed write fails the
/// actor; its restart reloads the inbox from the journal. The inbox is
/// named `"ledger"`.
pub struct Ledger<M> {
    journal: Arc<dyn Journal>,
    inbox: Option<DedupInbox>,
    _message: PhantomData<fn() -> M>,
}

impl<M: Numbered + Send + 'static> Ledger<M> {
    /// Props for a ledger writing to `journal`.
    pub fn props(journal: &Arc<dyn Journal>) -> Props<Self> {
        let journal = Arc::clone(journal);
        Props::new(move || Ledger {
            journal: Arc::clone(&journal),
            inbox: None,
            _message: PhantomData,
        })
    }
}

impl<M: Numbered + Send + 'static> Actor for Ledger<M> {
    type Msg = Delivery<M>;

    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.inbox = Some(DedupInbox::open(Arc::clone(&self.journal), "ledger").await?);
        Ok(())
    }

    async fn handle(&mut self, d: Delivery<M>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let inbox = self.inbox.as_ref().ok_or("not started")?;
        if inbox.check(&d) == Receipt::Duplicate {
            d.send_ack();
            return Ok(());
        }
        let mut key = d.message.number().to_be_bytes().to_vec();
        key.extend_from_slice(uuid::Uuid::now_v7().as_bytes());
        let mut batch = WriteBatch::new().put(NAMESPACE, key, Vec::new());
        let write = inbox.prepare(&d)?;
        batch.extend(write.writes());
        self.journal.write(batch).await?;
        write.ack();
        Ok(())
    }
}

/// Every application in the ledger, in key order: a number applied twice
/// appears twice. Feed it to a `History` as what was applied.
///
/// # Panics
///
/// If the journal cannot be scanned or holds a key that is not a ledger
/// entry.
pub async fn ledger(journal: &dyn Journal) -> Vec<u64> {
    let mut applied = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = journal
            .kv_scan(NAMESPACE, after.as_deref(), PAGE)
            .await
            .expect("scan the ledger");
        for (key, _) in &page {
            let number: [u8; 8] = key
                .get(..8)
                .and_then(|k| k.try_into().ok())
                .unwrap_or_else(|| panic!("not a ledger key: {key:?}"));
            applied.push(u64::from_be_bytes(number));
        }
        match page.last() {
            Some((key, _)) if page.len() == PAGE => after = Some(key.clone()),
            _ => return applied,
        }
    }
}
