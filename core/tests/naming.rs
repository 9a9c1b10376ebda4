//! Names, paths, lookup and resolvers.

mod support;

use std::any::{Any, TypeId};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use courier_core::{
    ActorPath, ActorRef, ActorSystem, BoxFuture, Error, Mailbox, MessageSink, Resolver, SendError,
    TryTellError, Watcher, WatcherId,
};
use support::recorder::{Msg, Recorder, recorder};
use support::{SECOND, system};

#[tokio::test]
async fn named_actors_have_unique_paths_and_resolve_by_path() {
    let system = system();
    let billing = system
        .spawn(recorder(Mailbox::unbounded()).with_name("billing"))
        .expect("spawn");
    assert_eq!(billing.path().as_str(), "/user/billing");

    let found = system.lookup::<Msg>("/user/billing").expect("lookup");
    assert_eq!(found, billing);
    found.tell(Msg::Note(1));
    assert_eq!(
        billing.ask(Msg::Seen, SECOND).await.expect("reply"),
        vec![1]
    );

    let duplicate = system.spawn(recorder(Mailbox::unbounded()).with_name("billing"));
    assert!(
        matches!(duplicate, Err(Error::NameTaken { ref path }) if path.as_str() == "/user/billing"),
        "{:?}",
        duplicate.err()
    );
    system.shutdown().await;
}

#[tokio::test]
async fn anonymous_actors_get_generated_names_that_resolve() {
    let system = system();
    let a = system.spawn(recorder(Mailbox::unbounded())).expect("spawn");
    let b = system.spawn(recorder(Mailbox::unbounded())).expect("spawn");
    assert_ne!(a.path(), b.path());
    assert!(a.path().name().starts_with('$'));
    assert_eq!(system.lookup::<Msg>(a.path().as_str()).expect("lookup"), a);
    system.shutdown().await;
}

#[tokio::test]
async fn lookup_errors_are_typed() {
    let system = system();
    system
        .spawn(recorder(Mailbox::unbounded()).with_name("billing"))
        .expect("spawn");

    let unknown = system.lookup::<Msg>("/user/nobody");
    assert!(
        matches!(unknown, Err(Error::NotFound { ref path }) if path.as_str() == "/user/nobody"),
        "{:?}",
        unknown.err()
    );

    let wrong = system.lookup::<String>("/user/billing");
    match wrong {
        Err(Error::WrongMessageType {
            actual, requested, ..
        }) => {
            assert!(actual.ends_with("recorder::Msg"), "{actual}");
            assert_eq!(requested, "alloc::string::String");
        }
        other => panic!("expected WrongMessageType, got {:?}", other.err()),
    }
    let message = system
        .lookup::<String>("/user/billing")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(message.contains("/user/billing"), "{message}");

    assert!(matches!(
        system.lookup::<Msg>("user/billing"),
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        system.spawn(recorder(Mailbox::unbounded()).with_name("a/b")),
        Err(Error::InvalidName { .. })
    ));
    assert!(matches!(
        system.spawn(recorder(Mailbox::unbounded()).with_name("$reserved")),
        Err(Error::InvalidName { .. })
    ));
    system.shutdown().await;
}

#[tokio::test]
async fn a_name_is_free_again_once_its_actor_has_terminated() {
    let system = system();
    let first = system
        .spawn(recorder(Mailbox::unbounded()).with_name("worker"))
        .expect("spawn");
    first.stop();
    first.terminated().await;
    assert!(matches!(
        system.lookup::<Msg>("/user/worker"),
        Err(Error::NotFound { .. })
    ));
    let second = system
        .spawn(recorder(Mailbox::unbounded()).with_name("worker"))
        .expect("the name is free");
    assert_ne!(first, second, "a new incarnation");
    system.shutdown().await;
}

#[tokio::test]
async fn children_live_under_their_parent_path() {
    use courier_core::{Actor, BoxError, Context, Props};

    struct Parent;
    impl Actor for Parent {
        type Msg = ();
        async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
            let child = ctx.spawn(Props::new(Recorder::default).with_name("ledger"))?;
            assert_eq!(child.path().as_str(), "/user/accounts/ledger");
            // Names are unique among siblings.
            assert!(matches!(
                ctx.spawn(Props::new(Recorder::default).with_name("ledger")),
                Err(Error::NameTaken { .. })
            ));
            assert_eq!(ctx.children().count(), 1);
            Ok(())
        }
        async fn handle(&mut self, _: (), _: &mut Context<Self>) -> Result<(), BoxError> {
            Ok(())
        }
    }

    let system = system();
    let parent = system
        .spawn(Props::new(|| Parent).with_name("accounts"))
        .expect("spawn");
    courier_test_support::eventually("the child is registered", SECOND, || {
        system.lookup::<Msg>("/user/accounts/ledger").is_ok()
    })
    .await;
    // The same child name under another parent is fine.
    system
        .spawn(recorder(Mailbox::unbounded()).with_name("ledger"))
        .expect("/user/ledger is a different path");
    parent.stop();
    parent.terminated().await;
    assert!(
        system.lookup::<Msg>("/user/accounts/ledger").is_err(),
        "the child stopped with its parent"
    );
    system.shutdown().await;
}

/// A sink that counts what it is given, standing in for a transport.
struct CountingSink {
    path: ActorPath,
    told: AtomicUsize,
}

impl MessageSink<Msg> for CountingSink {
    fn path(&self) -> &ActorPath {
        &self.path
    }
    fn try_tell(&self, msg: Msg) -> Result<(), TryTellError<Msg>> {
        match msg {
            // Numbers from 100 up stand for messages the transport refuses.
            Msg::Note(n) if n < 100 => {
                self.told.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            other => Err(TryTellError::Stopped(other)),
        }
    }
    fn send(&self, msg: Msg) -> BoxFuture<'_, Result<(), SendError<Msg>>> {
        let result = self.try_tell(msg).map_err(|e| SendError(e.into_inner()));
        Box::pin(async move { result })
    }
    fn stop(&self) {}
    fn watch(&self, watcher: Watcher) {
        watcher.notify_terminated(&self.path, 0);
    }
    fn unwatch(&self, _watcher: WatcherId) {}
}

struct TestResolver {
    sink: Arc<CountingSink>,
}

impl Resolver for TestResolver {
    fn resolve(
        &self,
        system: &ActorSystem,
        path: &ActorPath,
        message_type: TypeId,
        type_name: &'static str,
    ) -> Result<Box<dyn Any + Send>, Error> {
        if message_type != TypeId::of::<Msg>() {
            return Err(Error::WrongMessageType {
                path: path.clone(),
                actual: "recorder::Msg",
                requested: type_name,
            });
        }
        let sink: Arc<dyn MessageSink<Msg>> = self.sink.clone();
        Ok(Box::new(ActorRef::from_sink(system, sink)))
    }
}

#[tokio::test]
async fn paths_with_a_scheme_go_to_the_registered_resolver() {
    let system = system();
    let remote = "test://node@127.0.0.1:7000/user/billing";
    assert!(matches!(
        system.lookup::<Msg>(remote),
        Err(Error::UnknownScheme { ref scheme, .. }) if scheme == "test"
    ));

    let sink = Arc::new(CountingSink {
        path: ActorPath::parse(remote).expect("path"),
        told: AtomicUsize::new(0),
    });
    system.register_resolver("test", Arc::new(TestResolver { sink: sink.clone() }));
    let actor = system.lookup::<Msg>(remote).expect("resolved");
    assert_eq!(actor.path().as_str(), remote);
    actor.tell(Msg::Note(1));
    actor.send(Msg::Note(2)).await.expect("send");
    assert_eq!(sink.told.load(Ordering::SeqCst), 2);
    // A sink's refusal becomes a dead letter, as for a local actor.
    let mut dead = system
        .event_stream()
        .subscribe::<courier_core::DeadLetter>();
    actor.tell(Msg::Note(100));
    let letter = dead.try_recv().expect("dead letter");
    assert_eq!(letter.recipient.as_str(), remote);
    // terminated() of a sink ref goes through the sink's watch.
    tokio::time::timeout(SECOND, actor.terminated())
        .await
        .expect("sink reported termination");

    assert!(matches!(
        system.lookup::<String>(remote),
        Err(Error::WrongMessageType { .. })
    ));
}

/// A builder that becomes props only in a system that has what it needs
/// (here: a `Ready` extension set to true).
struct NeedsReady(courier_core::Props<Recorder>);

#[derive(Default)]
struct Ready(std::sync::atomic::AtomicBool);

impl courier_core::IntoProps for NeedsReady {
    type Actor = Recorder;

    fn into_props(
        self,
        system: &ActorSystem,
    ) -> Result<courier_core::Props<Recorder>, courier_core::BoxError> {
        if system.extension::<Ready>().0.load(Ordering::SeqCst) {
            Ok(self.0)
        } else {
            Err("the system is not ready".into())
        }
    }
}

#[tokio::test]
async fn props_refused_by_their_builder_spawn_nothing() {
    let system = system();
    let props = || NeedsReady(recorder(Mailbox::unbounded()).with_name("gated"));
    let refused = system.spawn(props());
    match refused {
        Err(Error::Props { source }) => assert_eq!(source.to_string(), "the system is not ready"),
        other => panic!("expected Error::Props, got {:?}", other.err()),
    }
    assert!(
        system.lookup::<Msg>("/user/gated").is_err(),
        "nothing spawned"
    );
    system.extension::<Ready>().0.store(true, Ordering::SeqCst);
    let gated = system.spawn(props()).expect("ready now");
    assert_eq!(gated.path().as_str(), "/user/gated");
    system.shutdown().await;
}
