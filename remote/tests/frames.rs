//! The receiving end of the wire: good frames reach their actors; every kind
//! of bad input is a typed rejection, never a panic, and never costs the
//! other messages of the frame.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier_core::{ActorSystem, Props};
use courier_remote::{DEFAULT_MAX_FRAME, Registry, Rejection, RejectionReason};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use support::{Billing, Charge, Refund, billing_registry, charge};

struct Node {
    system: ActorSystem,
    seen: Arc<Mutex<Vec<Charge>>>,
    registry: Registry,
}

fn node() -> Node {
    let system = ActorSystem::new("node");
    let seen: Arc<Mutex<Vec<Charge>>> = Arc::default();
    let s = Arc::clone(&seen);
    system
        .spawn(
            Props::new(move || Billing {
                seen: Arc::clone(&s),
            })
            .with_name("billing"),
        )
        .expect("spawn");
    Node {
        system,
        seen,
        registry: billing_registry(),
    }
}

impl Node {
    fn dispatch(&self, bytes: &[u8]) -> Result<Vec<Result<(), Rejection>>, Rejection> {
        self.registry
            .dispatch_frame(&self.system, bytes, DEFAULT_MAX_FRAME)
    }

    async fn seen(&self) -> Vec<Charge> {
        // Let the actor drain its mailbox.
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.seen.lock().expect("lock").clone()
    }
}

fn reason(result: &Result<(), Rejection>) -> Option<RejectionReason> {
    result.as_ref().err().map(|r| r.reason)
}

#[tokio::test]
async fn a_registered_message_reaches_its_actor() {
    let n = node();
    let frame = n
        .registry
        .encode_frame("/user/billing", 1, &charge(250))
        .expect("encode");
    let results = n.dispatch(&frame).expect("frame");
    assert_eq!(results, [Ok(())]);
    assert_eq!(n.seen().await, [charge(250)]);
}

#[tokio::test]
async fn each_bad_envelope_is_rejected_alone_and_the_rest_arrive() {
    let n = node();
    let mut sender = Registry::new();
    sender
        .register::<Charge>("billing.Charge/2")
        .expect("register");
    let frames = [
        // Unknown to the receiving node.
        sender
            .encode_frame("/user/billing", 1, &charge(1))
            .expect("encode"),
        n.registry
            .encode_frame("/user/billing", 2, &charge(2))
            .expect("encode"),
        // Nobody lives there.
        n.registry
            .encode_frame("/user/nobody", 3, &charge(3))
            .expect("encode"),
        // Billing takes charges, not refunds.
        n.registry
            .encode_frame("/user/billing", 4, &Refund(4))
            .expect("encode"),
        // A remote path is not a local recipient.
        n.registry
            .encode_frame("courier://other@127.0.0.1:1/user/billing", 5, &charge(5))
            .expect("encode"),
        n.registry
            .encode_frame("/user/billing", 6, &charge(6))
            .expect("encode"),
    ];
    // Protobuf merges concatenated frames: one batch of six envelopes.
    let batch: Vec<u8> = frames.concat();
    let results = n.dispatch(&batch).expect("frame");
    let reasons: Vec<Option<RejectionReason>> = results.iter().map(reason).collect();
    assert_eq!(
        reasons,
        [
            Some(RejectionReason::UnknownManifest),
            None,
            Some(RejectionReason::UnknownRecipient),
            Some(RejectionReason::WrongType),
            Some(RejectionReason::UnknownRecipient),
            None,
        ]
    );
    let seqs: Vec<u64> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|r| r.seq))
        .collect();
    assert_eq!(seqs, [1, 3, 4, 5], "each rejection names its message");
    assert_eq!(n.seen().await, [charge(2), charge(6)]);
}

#[tokio::test]
async fn an_undecodable_payload_is_rejected() {
    let n = node();
    // Bytes that are not a charge, sent under the charge's manifest.
    #[derive(Serialize, Deserialize)]
    struct Garbage(Vec<u8>);
    let mut liar = Registry::new();
    liar.register::<Garbage>("billing.Charge/1")
        .expect("register");
    let frame = liar
        .encode_frame("/user/billing", 7, &Garbage(vec![0xff; 3]))
        .expect("encode");
    let results = n.dispatch(&frame).expect("frame");
    assert_eq!(
        results.iter().map(reason).collect::<Vec<_>>(),
        [Some(RejectionReason::Undecodable)]
    );
    assert!(n.seen().await.is_empty());
}

#[tokio::test]
async fn hostile_length_prefixes_and_truncated_payloads_are_rejected_as_undecodable() {
    let n = node();
    // A charge starts with its account's length: these payloads claim
    // 2^64-1, 2^62 and 2^50 bytes (which an unlimited decode tries to
    // allocate, and panics or aborts), or 5 bytes that are not there.
    #[derive(Serialize, Deserialize)]
    struct Claim(u64);
    let mut liar = Registry::new();
    liar.register::<Claim>("billing.Charge/1")
        .expect("register");
    for (seq, claimed) in [u64::MAX, 1 << 62, 1 << 50, 5].into_iter().enumerate() {
        let frame = liar
            .encode_frame("/user/billing", seq as u64 + 1, &Claim(claimed))
            .expect("encode");
        assert!(frame.len() < 64, "a few bytes suffice: {}", frame.len());
        let results = n.dispatch(&frame).expect("frame");
        assert_eq!(
            results.iter().map(reason).collect::<Vec<_>>(),
            [Some(RejectionReason::Undecodable)],
            "claiming {claimed}"
        );
    }
    // A whole charge with a byte after it is not a charge either.
    #[derive(Serialize, Deserialize)]
    struct Longer(Charge, u8);
    let mut longer = Registry::new();
    longer
        .register::<Longer>("billing.Charge/1")
        .expect("register");
    let frame = longer
        .encode_frame("/user/billing", 9, &Longer(charge(1), 0))
        .expect("encode");
    let results = n.dispatch(&frame).expect("frame");
    assert_eq!(
        results.iter().map(reason).collect::<Vec<_>>(),
        [Some(RejectionReason::Undecodable)]
    );
    assert!(n.seen().await.is_empty());
}

#[tokio::test]
async fn an_oversized_frame_is_rejected_whole() {
    let n = node();
    let big = Charge {
        account: "x".repeat(2048),
        cents: 1,
    };
    let frame = n
        .registry
        .encode_frame("/user/billing", 1, &big)
        .expect("encode");
    let rejected = n
        .registry
        .dispatch_frame(&n.system, &frame, 1024)
        .expect_err("too big");
    assert_eq!(rejected.reason, RejectionReason::Oversized);
    assert!(n.seen().await.is_empty());
}

#[test]
fn registering_twice_is_an_error() {
    let mut r = Registry::new();
    r.register::<Charge>("billing.Charge/1").expect("first");
    assert!(
        r.register::<Refund>("billing.Charge/1").is_err(),
        "manifest taken"
    );
    assert!(
        r.register::<Charge>("billing.Charge/2").is_err(),
        "type taken"
    );
    assert!(r.register::<Refund>("").is_err(), "empty manifest");
    assert_eq!(r.manifest_of::<Charge>(), Some("billing.Charge/1"));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random bytes never panic the decoder; at most they are rejected.
    #[test]
    fn random_bytes_are_rejected_or_delivered_never_a_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..512)
    ) {
        let rt = runtime();
        rt.block_on(async {
            let n = node();
            let _ = n.dispatch(&bytes);
            n.system.shutdown().await;
        });
    }

    /// Every prefix of a good frame, and good frames with a bit flipped,
    /// are handled without a panic; a rejection always says why.
    #[test]
    fn truncated_and_mangled_frames_never_panic(cut in 0usize..200, flip in 0usize..200, bit in 0u8..8) {
        let rt = runtime();
        let outcome: Result<(), TestCaseError> = rt.block_on(async {
            let n = node();
            let good = n.registry.encode_frame("/user/billing", 9, &charge(42)).expect("encode");
            if let Err(r) = n.dispatch(&good[..cut.min(good.len())]) {
                prop_assert!(!r.detail.is_empty());
            }
            let mut mangled = good.clone();
            let at = flip % mangled.len();
            mangled[at] ^= 1 << bit;
            match n.dispatch(&mangled) {
                Ok(results) => {
                    for r in results.iter().filter_map(|r| r.as_ref().err()) {
                        prop_assert!(!r.detail.is_empty());
                    }
                }
                Err(r) => prop_assert!(!r.detail.is_empty()),
            }
            n.system.shutdown().await;
            Ok(())
        });
        outcome?;
    }
}
