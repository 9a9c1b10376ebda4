//! References inside messages: written as paths, resolved again on decode.

use std::sync::Arc;

use courier_core::{
    Actor, ActorPath, ActorRef, ActorSystem, BoxError, Context, Props, RefCodec, with_ref_codec,
};

struct Sink;

impl Actor for Sink {
    type Msg = u32;

    async fn handle(&mut self, _: u32, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        Ok(())
    }
}

/// A codec that exports under a fake node prefix and strips it on import
/// by looking the local part up (as a transport resolving its own node).
struct Loopback {
    system: ActorSystem,
}

impl RefCodec for Loopback {
    fn export(&self, path: &ActorPath) -> String {
        path.as_str().to_owned()
    }

    fn system(&self) -> &ActorSystem {
        &self.system
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    courier_codec::encode(value, courier_codec::MAX_LEN).expect("encode")
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    courier_codec::decode(bytes, courier_codec::MAX_LEN).map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_reference_travels_as_its_path_and_is_resolved_by_the_codec() {
    let system = ActorSystem::new("wire");
    let sink = system
        .spawn(Props::new(|| Sink).with_name("sink"))
        .expect("spawn");
    let bytes = encode(&sink);
    let as_path: String = decode(&bytes).expect("a string");
    assert_eq!(as_path, "/user/sink");

    // Without a transport's codec, decoding refuses with a clear error.
    let refused = decode::<ActorRef<u32>>(&bytes).expect_err("no codec");
    assert!(refused.contains("decoded by a transport"), "{refused}");

    let codec: Arc<dyn RefCodec> = Arc::new(Loopback {
        system: system.clone(),
    });
    let back: ActorRef<u32> = with_ref_codec(&codec, || decode(&bytes)).expect("resolved");
    assert_eq!(back.path(), sink.path());
    // A wrong message type or an unknown path is an error, not a panic.
    let wrong = with_ref_codec(&codec, || decode::<ActorRef<String>>(&bytes));
    assert!(wrong.is_err());
    let gone = with_ref_codec(&codec, || decode::<ActorRef<u32>>(&encode(&"/user/nobody")));
    assert!(gone.expect_err("unknown").contains("cannot resolve"));
}
