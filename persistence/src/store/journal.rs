//! [`Journal`] for [`Store`]: writes go to the writer task, reads to the
//! engine.

use async_trait::async_trait;

use super::prepared::PreparedWrite;
use super::reads::{decode_event, decode_kv, read_highest, read_meta};
use super::{Request, Store};
use crate::engine::Engine;
use crate::error::Result;
use crate::journal::{Journal, WriteBatch};
use crate::keys;
use crate::record::{EventRecord, SeqNr};

#[async_trait]
impl<E: Engine> Journal for Store<E> {
    async fn write(&self, batch: WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let write = PreparedWrite::encode(batch)?;
        self.submit(Request::Write(write)).await?;
        self.shared.metrics.write(started.elapsed());
        Ok(())
    }

    /// The address of what every clone of this store shares.
    fn store_identity(&self) -> Option<usize> {
        Some(std::sync::Arc::as_ptr(&self.shared).cast::<()>() as usize)
    }

    async fn read_events(
        &self,
        persistence_id: &str,
        from: SeqNr,
        to: SeqNr,
        limit: usize,
    ) -> Result<Vec<EventRecord>> {
        keys::check_id("persistence id", persistence_id)?;
        if limit == 0 || from > to {
            return Ok(Vec::new());
        }
        let pid = persistence_id.to_owned();
        self.read(move |engine| {
            let meta = read_meta(engine, &pid)?;
            let from = from.max(meta.deleted_to.saturating_add(1));
            if from > to {
                return Ok(Vec::new());
            }
            let start = keys::event(&pid, from);
            let end = match to.checked_add(1) {
                Some(after) => keys::event(&pid, after),
                None => keys::prefix_end(&keys::event(&pid, 0)[..keys::event(&pid, 0).len() - 8])
                    .unwrap_or_default(),
            };
            let mut events = Vec::with_capacity(limit.min(4096));
            engine.visit(&start, Some(&end), limit, &mut |k, v| {
                events.push(decode_event(&pid, k, v)?);
                Ok(())
            })?;
            Ok(events)
        })
        .await
    }

    async fn highest_seq_nr(&self, persistence_id: &str) -> Result<SeqNr> {
        keys::check_id("persistence id", persistence_id)?;
        let pid = persistence_id.to_owned();
        self.read(move |engine| read_highest(engine, &pid)).await
    }

    async fn deleted_to(&self, persistence_id: &str) -> Result<SeqNr> {
        keys::check_id("persistence id", persistence_id)?;
        let pid = persistence_id.to_owned();
        self.read(move |engine| Ok(read_meta(engine, &pid)?.deleted_to))
            .await
    }

    async fn delete_events_to(&self, persistence_id: &str, to: SeqNr) -> Result<()> {
        keys::check_id("persistence id", persistence_id)?;
        self.submit(Request::DeleteEventsTo {
            persistence_id: persistence_id.to_owned(),
            to,
        })
        .await
    }

    async fn kv_get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        keys::check_id("namespace", namespace)?;
        let ns = namespace.to_owned();
        let key = key.to_vec();
        let full = keys::kv(namespace, &key);
        self.read(move |engine| {
            engine
                .get(&full)?
                .map(|bytes| decode_kv(&ns, &key, &bytes))
                .transpose()
        })
        .await
    }

    async fn kv_get_many(&self, namespace: &str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        keys::check_id("namespace", namespace)?;
        let ns = namespace.to_owned();
        let keys = keys.to_vec();
        self.read(move |engine| {
            keys.iter()
                .map(|key| {
                    engine
                        .get(&keys::kv(&ns, key))?
                        .map(|bytes| decode_kv(&ns, key, &bytes))
                        .transpose()
                })
                .collect()
        })
        .await
    }

    async fn kv_scan(
        &self,
        namespace: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        keys::check_id("namespace", namespace)?;
        let ns = namespace.to_owned();
        let prefix = keys::kv(namespace, &[]);
        let start = match after {
            // The smallest key greater than `after` is `after ++ [0]`.
            Some(after) => {
                let mut k = keys::kv(namespace, after);
                k.push(0);
                k
            }
            None => prefix.clone(),
        };
        let end = keys::prefix_end(&prefix);
        self.read(move |engine| {
            engine
                .scan(&start, end.as_deref(), limit, false)?
                .into_iter()
                .map(|(k, v)| {
                    let key = keys::kv_suffix(&ns, &k);
                    Ok((key.to_vec(), decode_kv(&ns, key, &v)?))
                })
                .collect()
        })
        .await
    }
}
