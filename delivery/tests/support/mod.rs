//! What the delivery tests share: a deduplicating receiver whose effect is a
//! durable ledger written atomically with its inbox record.
#![allow(dead_code)]

use std::sync::Arc;

use courier::delivery::{DedupInbox, Delivery, Receipt};
use courier::persistence::{Journal, WriteBatch};
use courier::prelude::*;

/// Applies each number once: its ledger entry (the number and a unique
/// suffix, so that a second application shows as a second entry) and its
/// inbox record in one atomic write, then the ack. A failed write fails the
/// actor; its restart reloads the inbox from disk.
pub struct Ledger {
    pub journal: Arc<dyn Journal>,
    pub inbox: Option<DedupInbox>,
}

impl Ledger {
    pub fn props(journal: &Arc<dyn Journal>) -> Props<Self> {
        let journal = Arc::clone(journal);
        Props::new(move || Ledger {
            journal: Arc::clone(&journal),
            inbox: None,
        })
    }
}

impl Actor for Ledger {
    type Msg = Delivery<u64>;

    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.inbox = Some(DedupInbox::open(Arc::clone(&self.journal), "ledger").await?);
        Ok(())
    }

    async fn handle(&mut self, d: Delivery<u64>, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let inbox = self.inbox.as_ref().ok_or("not started")?;
        if inbox.check(&d) == Receipt::Duplicate {
            d.send_ack();
            return Ok(());
        }
        let mut key = d.message.to_be_bytes().to_vec();
        key.extend_from_slice(uuid::Uuid::now_v7().as_bytes());
        let mut batch = WriteBatch::new().put("applied", key, Vec::new());
        let write = inbox.prepare(&d)?;
        batch.extend(write.writes());
        self.journal.write(batch).await?;
        write.ack();
        Ok(())
    }
}

/// Every application in the ledger, in key order: a number applied twice
/// appears twice. Feed it to a `History` as what was applied.
pub async fn ledger(journal: &dyn Journal) -> Vec<u64> {
    let mut applied = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = journal
            .kv_scan("applied", after.as_deref(), 1000)
            .await
            .expect("scan the ledger");
        for (key, _) in &page {
            let number: [u8; 8] = key[..8].try_into().expect("ledger key");
            applied.push(u64::from_be_bytes(number));
        }
        match page.last() {
            Some((key, _)) if page.len() == 1000 => after = Some(key.clone()),
            _ => return applied,
        }
    }
}
