//! The remote layer's metrics, read through a recording `Recorder` while
//! two nodes run: the link goes up and down, a rejection is counted on
//! both sides, and every series has the labels docs/operations.md's table
//! gives it.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier_core::{ActorSystem, Props};
use courier_remote::{Node, RemoteSettings};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use support::{Billing, Charge, SECRET, billing_registry, charge};

/// One series: its name, its labels in order, its value.
type Series = (String, Vec<(String, String)>, f64);

/// (name, labels in order, value) of every `courier_remote_…` series, as
/// Prometheus text renders them (registered ones included, at 0).
fn series(handle: &PrometheusHandle) -> Vec<Series> {
    handle
        .render()
        .lines()
        .filter(|l| l.starts_with("courier_remote_"))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|p| !p.is_empty())
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((k.to_owned(), v.trim_matches('"').to_owned()))
                })
                .collect();
            Some((name.to_owned(), labels, value.parse().ok()?))
        })
        .collect()
}

fn value(handle: &PrometheusHandle, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    series(handle)
        .into_iter()
        .find_map(|(n, l, v)| (n == name && l == wanted).then_some(v))
}

/// The label names docs/operations.md gives the metric `name`.
fn documented_labels(name: &str) -> Option<BTreeSet<String>> {
    let doc = include_str!("../../docs/operations.md");
    doc.lines().find_map(|line| {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        (cells.len() >= 6 && cells[1] == format!("`{name}`")).then(|| {
            cells[3]
                .split(',')
                .map(|l| l.trim().trim_matches('`').to_owned())
                .filter(|l| !l.is_empty() && l != "—")
                .collect()
        })
    })
}

/// Waits up to 10 s (real sockets); on failure, names what was recorded.
async fn eventually(snapshotter: &PrometheusHandle, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within 10 s; recorded: {:#?}",
            series(snapshotter)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_rejections_and_their_labels_are_recorded() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let snapshotter = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder of this test binary");

    let billing = ActorSystem::new("billing-node");
    let seen: Arc<Mutex<Vec<Charge>>> = Arc::default();
    let s = Arc::clone(&seen);
    billing
        .spawn(
            Props::new(move || Billing {
                seen: Arc::clone(&s),
            })
            .with_name("billing"),
        )
        .expect("spawn");
    let billing_node = Node::start(
        &billing,
        RemoteSettings::new("billing-node", SECRET),
        billing_registry(),
    )
    .await
    .expect("start receiver node");
    let shop = ActorSystem::new("shop-node");
    let _shop_node = Node::start(
        &shop,
        RemoteSettings::new("shop-node", SECRET),
        billing_registry(),
    )
    .await
    .expect("start sender node");

    // One message that arrives, one to an actor the peer does not have.
    let to_billing = shop
        .lookup::<Charge>(&billing_node.path_of("/user/billing"))
        .expect("lookup");
    let to_nobody = shop
        .lookup::<Charge>(&billing_node.path_of("/user/nobody"))
        .expect("lookup");
    to_billing.tell(charge(1));
    to_nobody.tell(charge(2));
    let peer = [("peer", "billing-node")];
    let rejected = [("peer", "billing-node"), ("reason", "unknown_recipient")];
    eventually(
        &snapshotter,
        "the link up and the rejection counted",
        || {
            value(&snapshotter, "courier_remote_link_up", &peer) == Some(1.0)
                && value(
                    &snapshotter,
                    "courier_remote_outbound_rejections_total",
                    &rejected,
                ) == Some(1.0)
                && value(
                    &snapshotter,
                    "courier_remote_inbound_rejections_total",
                    &[("reason", "unknown_recipient")],
                ) == Some(1.0)
        },
    )
    .await;
    assert!(value(&snapshotter, "courier_remote_peers_connected", &[]).is_some_and(|v| v >= 1.0));
    assert!(value(&snapshotter, "courier_remote_inbound_links", &[]).is_some_and(|v| v >= 1.0));
    assert_eq!(seen.lock().expect("lock").len(), 1);

    // The peer goes away: the link is down and its loss counted.
    billing_node.shutdown().await;
    billing.shutdown().await;
    eventually(
        &snapshotter,
        "the link down and its failure counted",
        || {
            value(&snapshotter, "courier_remote_link_up", &peer) == Some(0.0)
                && value(&snapshotter, "courier_remote_link_failures_total", &peer)
                    .is_some_and(|v| v >= 1.0)
        },
    )
    .await;

    // Every series has the table's labels.
    for (name, labels, _) in series(&snapshotter) {
        let documented = documented_labels(&name)
            .unwrap_or_else(|| panic!("{name} is not in docs/operations.md's table"));
        let registered: BTreeSet<String> = labels.into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            registered, documented,
            "{name}: registered labels against the table's"
        );
    }
    shop.shutdown().await;
}
