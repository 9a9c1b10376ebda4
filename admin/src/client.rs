//! [`AdminClient`]: asks a node's admin endpoint, over mutual TLS.

use std::time::Duration;

use courier_remote::TlsSettings;

use crate::error::{Error, Result};
use crate::service::MAX_LIST;
use crate::wire::{self, admin_client};

/// The largest reply the client decodes, in bytes (the server's cap).
const MAX_REPLY: usize = 16 * 1024 * 1024;

/// A connection to one node's admin endpoint.
#[derive(Clone, Debug)]
pub struct AdminClient {
    inner: admin_client::AdminClient<tonic::transport::Channel>,
}

/// `courier://node@host:port` split into the node's name and `host:port`.
fn parse(address: &str) -> Result<(&str, &str)> {
    let bad = |reason| Error::Address {
        address: address.to_owned(),
        reason,
    };
    let rest = address
        .strip_prefix("courier://")
        .ok_or_else(|| bad("it must start with courier://"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (node, host_port) = rest
        .split_once('@')
        .ok_or_else(|| bad("it must name the node: courier://node@host:port"))?;
    if node.is_empty() || host_port.is_empty() || host_port.contains('/') {
        return Err(bad("it must be courier://node@host:port"));
    }
    Ok((node, host_port))
}

impl AdminClient {
    /// Connects to the node at `address` (`courier://node@host:port`) as
    /// `identity`, which `tls`'s certificate must name; the node must prove
    /// it is `node` with a certificate from the same CA.
    ///
    /// # Errors
    ///
    /// [`Error::Address`] for a malformed address, [`Error::Connect`] when
    /// the credentials are unusable or the node cannot be reached (or
    /// refuses the certificate) within `timeout`.
    pub async fn connect(
        address: &str,
        identity: &str,
        tls: &TlsSettings,
        timeout: Duration,
    ) -> Result<Self> {
        let (node, host_port) = parse(address)?;
        let channel = courier_remote::connect(node, host_port, identity, tls, timeout)
            .await
            .map_err(Error::Connect)?;
        Ok(Self {
            inner: admin_client::AdminClient::new(channel).max_decoding_message_size(MAX_REPLY),
        })
    }

    /// Senders, inboxes, and journals when the node has its store.
    ///
    /// # Errors
    ///
    /// What the node answered, as [`Error`].
    pub async fn inspect(&mut self) -> Result<wire::InspectReply> {
        Ok(self
            .inner
            .inspect(wire::InspectRequest {})
            .await?
            .into_inner())
    }

    /// The unconfirmed deliveries of `sender` (or of all), at most
    /// [`MAX_LIST`].
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown sender; as [`inspect`](Self::inspect).
    pub async fn pending(&mut self, sender: Option<&str>) -> Result<wire::DeliveryList> {
        Ok(self.inner.pending(list(sender)).await?.into_inner())
    }

    /// The parked deliveries of `sender` (or of all), at most [`MAX_LIST`].
    ///
    /// # Errors
    ///
    /// As [`pending`](Self::pending).
    pub async fn parked(&mut self, sender: Option<&str>) -> Result<wire::DeliveryList> {
        Ok(self.inner.parked(list(sender)).await?.into_inner())
    }

    /// One page of `sender`'s unconfirmed deliveries: at most `limit` (and
    /// [`MAX_LIST`]) with ids above `after`; `truncated` when more follow
    /// the last.
    ///
    /// # Errors
    ///
    /// As [`pending`](Self::pending).
    pub async fn pending_page(
        &mut self,
        sender: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<wire::DeliveryList> {
        let request = page(sender, after, limit);
        Ok(self.inner.pending(request).await?.into_inner())
    }

    /// One page of `sender`'s parked deliveries, as
    /// [`pending_page`](Self::pending_page).
    ///
    /// # Errors
    ///
    /// As [`pending`](Self::pending).
    pub async fn parked_page(
        &mut self,
        sender: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<wire::DeliveryList> {
        let request = page(sender, after, limit);
        Ok(self.inner.parked(request).await?.into_inner())
    }

    /// Sends parked deliveries `ids` of `sender` again, through the running
    /// sender.
    ///
    /// # Errors
    ///
    /// [`Error::NotAllowed`] when the caller may not repair,
    /// [`Error::NotFound`] for an id that is not parked (those before it
    /// were requeued), [`Error::Refused`] when the sender does not run in
    /// the node's process, [`Error::BadRequest`] for no ids or an id of 0.
    pub async fn requeue(&mut self, sender: &str, ids: &[u64]) -> Result<wire::RequeueReply> {
        Ok(self
            .inner
            .requeue(wire::RepairRequest {
                sender: sender.to_owned(),
                ids: ids.to_vec(),
            })
            .await?
            .into_inner())
    }

    /// Deletes parked deliveries `ids` of `sender`, through the running
    /// sender.
    ///
    /// # Errors
    ///
    /// As [`requeue`](Self::requeue).
    pub async fn purge(&mut self, sender: &str, ids: &[u64]) -> Result<wire::PurgeReply> {
        Ok(self
            .inner
            .purge(wire::RepairRequest {
                sender: sender.to_owned(),
                ids: ids.to_vec(),
            })
            .await?
            .into_inner())
    }

    /// Events `from..=to` of `persistence_id`, at most `limit` (capped at
    /// [`MAX_LIST`]).
    ///
    /// # Errors
    ///
    /// As [`inspect`](Self::inspect).
    pub async fn events(
        &mut self,
        persistence_id: &str,
        from: u64,
        to: u64,
        limit: u32,
    ) -> Result<wire::EventList> {
        Ok(self
            .inner
            .events(wire::EventsRequest {
                persistence_id: persistence_id.to_owned(),
                from,
                to,
                limit,
            })
            .await?
            .into_inner())
    }

    /// Every record of the node's store checked.
    ///
    /// # Errors
    ///
    /// [`Error::Refused`] when the node's endpoint has no store to read.
    pub async fn verify(&mut self) -> Result<wire::VerifyReply> {
        Ok(self
            .inner
            .verify(wire::VerifyRequest {})
            .await?
            .into_inner())
    }
}

fn list(sender: Option<&str>) -> wire::ListRequest {
    wire::ListRequest {
        sender: sender.map(str::to_owned),
        limit: MAX_LIST as u32,
        after: None,
    }
}

fn page(sender: &str, after: Option<u64>, limit: usize) -> wire::ListRequest {
    wire::ListRequest {
        sender: Some(sender.to_owned()),
        limit: limit.min(MAX_LIST) as u32,
        after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_the_node_and_its_host() {
        assert_eq!(
            parse("courier://app@127.0.0.1:7000").ok(),
            Some(("app", "127.0.0.1:7000"))
        );
        assert_eq!(
            parse("courier://app@127.0.0.1:7000/").ok(),
            Some(("app", "127.0.0.1:7000"))
        );
        for bad in [
            "http://app@h:1",
            "courier://h:1",
            "courier://@h:1",
            "courier://a@h:1/user/x",
        ] {
            assert!(matches!(parse(bad), Err(Error::Address { .. })), "{bad}");
        }
    }
}
