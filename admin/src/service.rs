//! [`AdminService`]: the server side of the admin protocol, over the live
//! journal and the running senders.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use courier_core::ActorSystem;
use courier_delivery::inspect::{self, StoredDelivery};
use courier_delivery::{DeliveryId, live};
use courier_persistence::{Engine, EventSourced, Journal, Manifest, Store, StoreReport};
use courier_remote::PeerIdentity;
use tonic::{Request, Response, Status};

use crate::settings::AdminSettings;
use crate::wire::{self, admin_server::Admin};

/// The largest request the service decodes, in bytes.
pub const MAX_REQUEST: usize = 64 * 1024;
/// The largest reply it sends, in bytes.
const MAX_REPLY: usize = 16 * 1024 * 1024;
/// The most deliveries or events one reply lists (a request's `limit` is
/// capped to it).
pub const MAX_LIST: usize = 10_000;
/// The most ids one repair request names.
pub const MAX_IDS: usize = 1000;
/// The longest sender name or persistence id accepted.
const MAX_NAME: usize = 1024;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// Turns a stored event of one type (any manifest version) into JSON.
type Decoder = Arc<dyn Fn(&Manifest, &[u8]) -> Result<String, String> + Send + Sync>;
/// The longest decoded event sent; a longer one is left to the bytes.
pub const MAX_DECODED: usize = 16 * 1024;
type Verifier = Arc<dyn Fn() -> BoxFuture<courier_persistence::Result<StoreReport>> + Send + Sync>;

/// The admin endpoint of one process. Build it, then [`mount`](Self::mount)
/// it on the node with
/// [`Node::start_with_services`](courier_remote::Node::start_with_services).
///
/// ```
/// use std::sync::Arc;
/// use courier::ActorSystem;
/// use courier::admin::{AdminService, AdminSettings};
/// use courier::persistence::{Journal, MemoryStore};
/// use courier::remote::{Node, Registry, RemoteSettings, Transport};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = ActorSystem::new("app");
/// let store = MemoryStore::memory()?;
/// let journal: Arc<dyn Journal> = Arc::new(store.clone());
/// let admin = AdminService::new(&system, journal, AdminSettings::read_only().allow_repair("operator"))
///     .with_store(store);
/// // Under a shared secret alone (no `tls`), the node refuses to serve it;
/// // `RemoteSettings::with_tls` makes it start.
/// let settings = RemoteSettings::new("app", "a development secret of 32 bytes!!");
/// let transport = Transport::tcp("127.0.0.1:0".parse()?).await?;
/// let refused = Node::start_with_services(&system, settings, Registry::new(), transport, move |routes| {
///     admin.mount(routes)
/// })
/// .await;
/// assert!(refused.is_err());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AdminService {
    system: ActorSystem,
    journal: Arc<dyn Journal>,
    verifier: Option<Verifier>,
    settings: Arc<AdminSettings>,
    /// By event manifest type name.
    decoders: Arc<HashMap<String, Decoder>>,
}

impl std::fmt::Debug for AdminService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminService")
            .field("repair", &self.settings.repair)
            .field("verify", &self.verifier.is_some())
            .field("decoders", &self.decoders.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl AdminService {
    /// The endpoint over `journal` (the one the process's senders and
    /// receivers use) and the senders running in `system`.
    pub fn new(system: &ActorSystem, journal: Arc<dyn Journal>, settings: AdminSettings) -> Self {
        Self {
            system: system.clone(),
            journal,
            verifier: None,
            settings: Arc::new(settings),
            decoders: Arc::new(HashMap::new()),
        }
    }

    /// Shows the events of `E` decoded, as JSON, in `courier --node …
    /// events` (the offline tool knows no program's types and shows their
    /// bytes). Any version `E::upcast_event` reads is decoded; an event it
    /// refuses is listed with the reason, beside its bytes.
    ///
    /// ```
    /// use courier::admin::{AdminService, AdminSettings};
    /// use courier::persistence::{Journal, MemoryStore};
    /// use courier::prelude::*;
    /// use std::sync::Arc;
    ///
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Deposited(u64);
    ///
    /// struct Account(u64);
    ///
    /// impl EventSourced for Account {
    ///     type Command = u64;
    ///     type Event = Deposited;
    ///     async fn handle_command(&mut self, n: u64, _: &mut Ctx<Self>) -> Handled<Self> {
    ///         Ok(Effect::persist(Deposited(n)))
    ///     }
    ///     fn apply_event(&mut self, Deposited(n): Deposited) {
    ///         self.0 += n;
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let system = ActorSystem::new("app");
    /// let journal: Arc<dyn Journal> = Arc::new(MemoryStore::memory()?);
    /// let admin = AdminService::new(&system, journal, AdminSettings::read_only())
    ///     .decode_events_of::<Account>();
    /// # drop(admin);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn decode_events_of<E: EventSourced>(mut self) -> Self {
        let decoder: Decoder = Arc::new(|manifest, payload| {
            let event = E::upcast_event(manifest, payload).map_err(|e| e.to_string())?;
            serde_json::to_string(&event).map_err(|e| format!("not representable as JSON: {e}"))
        });
        Arc::make_mut(&mut self.decoders).insert(E::event_manifest().type_name, decoder);
        self
    }

    /// An event's decoded form and why not, when a decoder is registered.
    fn decode(&self, manifest: &Manifest, payload: &[u8]) -> (Option<String>, Option<String>) {
        let Some(decoder) = self.decoders.get(&manifest.type_name) else {
            return (None, None);
        };
        match decoder(manifest, payload) {
            Ok(json) if json.len() <= MAX_DECODED => (Some(json), None),
            Ok(json) => (
                None,
                Some(format!(
                    "decoded form of {} bytes is over {MAX_DECODED}: shown as bytes",
                    json.len()
                )),
            ),
            Err(reason) => (None, Some(reason)),
        }
    }

    /// Also answers `verify` and lists the journals in `inspect`, by
    /// reading every record of `store` (the store behind the journal).
    #[must_use]
    pub fn with_store<E: Engine>(mut self, store: Store<E>) -> Self {
        self.verifier = Some(Arc::new(move || {
            let store = store.clone();
            Box::pin(async move { store.verify().await })
        }));
        self
    }

    /// Adds the gRPC service, with its size limits, to a node's `routes`:
    /// pass `|routes| admin.mount(routes)` to
    /// [`Node::start_with_services`](courier_remote::Node::start_with_services).
    pub fn mount(self, routes: tonic::service::Routes) -> tonic::service::Routes {
        routes.add_service(
            wire::admin_server::AdminServer::new(self)
                .max_decoding_message_size(MAX_REQUEST)
                .max_encoding_message_size(MAX_REPLY),
        )
    }

    /// Who called; refuses a connection without a verified certificate.
    fn caller<T>(&self, request: &Request<T>) -> Result<PeerIdentity, Status> {
        PeerIdentity::of(request.extensions()).ok_or_else(|| {
            Status::unauthenticated(
                "the admin endpoint needs a client certificate signed by the node's CA",
            )
        })
    }

    /// Refuses a repair by a caller that no `[admin] repair` identity names.
    fn may_repair(&self, caller: &PeerIdentity, what: &str) -> Result<String, Status> {
        match self.settings.repair.iter().find(|id| caller.names(id)) {
            Some(id) => Ok(id.clone()),
            None => {
                tracing::warn!(
                    what,
                    "admin repair refused: the caller's certificate names no identity in [admin] repair"
                );
                Err(Status::permission_denied(
                    "this caller may read but not repair: add an identity its certificate names to [admin] repair",
                ))
            }
        }
    }

    async fn report(&self) -> Result<Option<StoreReport>, Status> {
        match &self.verifier {
            None => Ok(None),
            Some(verify) => verify().await.map(Some).map_err(internal),
        }
    }

    /// The pending or parked deliveries, at most `limit`, of one sender
    /// from `after` on, or of every sender from the first.
    async fn list(
        &self,
        request: wire::ListRequest,
        parked: bool,
    ) -> Result<wire::DeliveryList, Status> {
        let limit = limit(request.limit);
        let after = match (request.after, &request.sender) {
            (Some(_), None) => {
                return Err(Status::invalid_argument(
                    "`after` pages one sender's deliveries: give the sender too",
                ));
            }
            (after, _) => after.map(DeliveryId),
        };
        let names = match request.sender {
            Some(name) => {
                check_name(&name, "sender")?;
                let known = inspect::senders(&self.journal)
                    .await
                    .map_err(delivery_status)?;
                if !known.iter().any(|s| s.name == name) {
                    return Err(Status::not_found(format!(
                        "no sender {name:?} in the journal"
                    )));
                }
                vec![name]
            }
            None => inspect::senders(&self.journal)
                .await
                .map_err(delivery_status)?
                .into_iter()
                .map(|s| s.name)
                .collect(),
        };
        let mut out = wire::DeliveryList::default();
        for name in names {
            let room = limit - out.deliveries.len();
            let page = if parked {
                inspect::parked_page(&self.journal, &name, after, room).await
            } else {
                inspect::pending_page(&self.journal, &name, after, room).await
            }
            .map_err(delivery_status)?;
            // What only the running sender knows: attempts, last error.
            let running: HashMap<u64, courier_delivery::PendingDelivery> = if parked {
                HashMap::new()
            } else {
                live::sender(&self.system, &name)
                    .and_then(|s| s.pending(after, room))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| (p.id.0, p))
                    .collect()
            };
            for d in &page.deliveries {
                let run = running.get(&d.id.0);
                out.deliveries.push(delivery(&name, d, run));
            }
            // Once the list is full, the next sender's page (of none)
            // still says whether it has any.
            if page.more {
                out.truncated = true;
                return Ok(out);
            }
        }
        Ok(out)
    }

    fn running(&self, name: &str) -> Result<live::LiveSender, Status> {
        check_name(name, "sender")?;
        live::sender(&self.system, name).ok_or_else(|| {
            Status::failed_precondition(format!(
                "sender {name:?} does not run in this process: repair it where it runs, or offline with `courier parked` while nothing runs it"
            ))
        })
    }
}

fn delivery(
    sender: &str,
    d: &StoredDelivery,
    running: Option<&courier_delivery::PendingDelivery>,
) -> wire::Delivery {
    wire::Delivery {
        sender: sender.to_owned(),
        id: d.id.0,
        destination: d.destination.clone(),
        created_ms: d.created_ms,
        size: d.size as u64,
        reason: d.reason.clone(),
        attempts: running.map(|p| p.attempts),
        last_error: running.and_then(|p| p.last_error.clone()),
    }
}

fn limit(asked: u32) -> usize {
    match asked as usize {
        0 => MAX_LIST,
        n => n.min(MAX_LIST),
    }
}

fn check_name(name: &str, what: &str) -> Result<(), Status> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(Status::invalid_argument(format!(
            "a {what} name must be 1 to {MAX_NAME} bytes"
        )));
    }
    Ok(())
}

fn check_ids(ids: &[u64]) -> Result<(), Status> {
    if ids.is_empty() {
        return Err(Status::invalid_argument("no delivery ids given"));
    }
    if ids.len() > MAX_IDS {
        return Err(Status::invalid_argument(format!(
            "{} ids in one request (at most {MAX_IDS})",
            ids.len()
        )));
    }
    if ids.contains(&0) {
        return Err(Status::invalid_argument(
            "0 is no delivery id (ids start at 1)",
        ));
    }
    Ok(())
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

fn delivery_status(e: courier_delivery::Error) -> Status {
    match e {
        courier_delivery::Error::NotParked { .. } => Status::not_found(e.to_string()),
        courier_delivery::Error::NotRunning { .. }
        | courier_delivery::Error::SenderStopped { .. } => {
            Status::failed_precondition(e.to_string())
        }
        courier_delivery::Error::OutboxFull { .. } => Status::resource_exhausted(e.to_string()),
        e => internal(e),
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn inspect(
        &self,
        request: Request<wire::InspectRequest>,
    ) -> Result<Response<wire::InspectReply>, Status> {
        self.caller(&request)?;
        let report = self.report().await?;
        let senders = inspect::senders(&self.journal)
            .await
            .map_err(delivery_status)?;
        let inboxes = inspect::inboxes(&self.journal)
            .await
            .map_err(delivery_status)?;
        let mut reply = wire::InspectReply {
            has_journals: report.is_some(),
            ..Default::default()
        };
        if let Some(report) = &report {
            reply.problem_count = report.problem_count;
            reply.journals = report
                .journals
                .iter()
                .map(|j| wire::Journal {
                    persistence_id: j.persistence_id.clone(),
                    events: j.events,
                    lowest: j.lowest,
                    highest: j.highest,
                    deleted_to: j.deleted_to,
                    snapshots: j.snapshots.clone(),
                })
                .collect();
        }
        reply.senders = senders
            .into_iter()
            .map(|s| {
                let running = live::sender(&self.system, &s.name);
                wire::Sender {
                    live: running.is_some(),
                    redelivered: running.and_then(|r| r.redelivered()),
                    incarnation: s.incarnation.to_string(),
                    next_id: s.next_id,
                    pending: s.pending,
                    oldest_pending_ms: s.oldest_pending_ms,
                    destinations: s.destinations.into_iter().collect(),
                    parked: s.parked,
                    name: s.name,
                }
            })
            .collect();
        reply.inboxes = inboxes
            .into_iter()
            .map(|i| wire::Inbox {
                receiver: i.receiver,
                identity: i.identity.to_string(),
                senders: i
                    .senders
                    .into_iter()
                    .map(|s| wire::InboxSender {
                        sender: s.sender,
                        incarnation: s.incarnation.to_string(),
                        watermark: s.watermark,
                        kept: s.kept,
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(reply))
    }

    async fn pending(
        &self,
        request: Request<wire::ListRequest>,
    ) -> Result<Response<wire::DeliveryList>, Status> {
        self.caller(&request)?;
        self.list(request.into_inner(), false)
            .await
            .map(Response::new)
    }

    async fn parked(
        &self,
        request: Request<wire::ListRequest>,
    ) -> Result<Response<wire::DeliveryList>, Status> {
        self.caller(&request)?;
        self.list(request.into_inner(), true)
            .await
            .map(Response::new)
    }

    async fn requeue(
        &self,
        request: Request<wire::RepairRequest>,
    ) -> Result<Response<wire::RequeueReply>, Status> {
        let caller = self.caller(&request)?;
        let who = self.may_repair(&caller, "requeue")?;
        let request = request.into_inner();
        check_ids(&request.ids)?;
        let sender = self.running(&request.sender)?;
        let mut reply = wire::RequeueReply::default();
        for &id in &request.ids {
            // One by one: each is durable when its answer arrives, and a
            // failure stops the rest (the reply's error names the id).
            let new = sender.requeue(DeliveryId(id)).await.map_err(|e| {
                let status = delivery_status(e);
                Status::new(
                    status.code(),
                    format!("delivery {id}: {}", status.message()),
                )
            })?;
            tracing::info!(caller = %who, sender = %request.sender, id, new_id = new.0, "admin requeued a parked delivery");
            reply.requeued.push(wire::Requeued { id, new_id: new.0 });
        }
        Ok(Response::new(reply))
    }

    async fn purge(
        &self,
        request: Request<wire::RepairRequest>,
    ) -> Result<Response<wire::PurgeReply>, Status> {
        let caller = self.caller(&request)?;
        let who = self.may_repair(&caller, "purge")?;
        let request = request.into_inner();
        check_ids(&request.ids)?;
        let sender = self.running(&request.sender)?;
        let mut reply = wire::PurgeReply::default();
        for &id in &request.ids {
            sender.purge(DeliveryId(id)).await.map_err(|e| {
                let status = delivery_status(e);
                Status::new(
                    status.code(),
                    format!("delivery {id}: {}", status.message()),
                )
            })?;
            tracing::info!(caller = %who, sender = %request.sender, id, "admin purged a parked delivery");
            reply.purged.push(id);
        }
        Ok(Response::new(reply))
    }

    async fn events(
        &self,
        request: Request<wire::EventsRequest>,
    ) -> Result<Response<wire::EventList>, Status> {
        self.caller(&request)?;
        let request = request.into_inner();
        check_name(&request.persistence_id, "persistence id")?;
        let from = request.from.max(1);
        let to = if request.to == 0 {
            u64::MAX
        } else {
            request.to
        };
        if from > to {
            return Err(Status::invalid_argument(format!(
                "from {from} is after to {to}"
            )));
        }
        let events = self
            .journal
            .read_events(&request.persistence_id, from, to, limit(request.limit))
            .await
            .map_err(internal)?;
        Ok(Response::new(wire::EventList {
            events: events
                .into_iter()
                .map(|e| {
                    let (decoded, decode_error) = self.decode(&e.manifest, &e.payload);
                    wire::Event {
                        seq_nr: e.seq_nr,
                        manifest: format!("{}/{}", e.manifest.type_name, e.manifest.version),
                        timestamp_ms: e.timestamp,
                        writer: e.writer_id.to_string(),
                        payload: e.payload,
                        decoded,
                        decode_error,
                    }
                })
                .collect(),
        }))
    }

    async fn verify(
        &self,
        request: Request<wire::VerifyRequest>,
    ) -> Result<Response<wire::VerifyReply>, Status> {
        self.caller(&request)?;
        let Some(report) = self.report().await? else {
            return Err(Status::failed_precondition(
                "this process's admin endpoint was not given its store (AdminService::with_store): run `courier verify` offline",
            ));
        };
        Ok(Response::new(wire::VerifyReply {
            clean: report.is_clean(),
            records: report.records,
            journals: report.journals.len() as u64,
            namespaces: report.namespaces.len() as u64,
            problem_count: report.problem_count,
            problems: report.problems.iter().map(ToString::to_string).collect(),
        }))
    }
}
