//! `examples/courier.toml` is the complete, correct configuration reference:
//! it parses to the defaults, its commented-out defaults are the code's,
//! its override examples take effect, and it lists the same keys as the
//! table in `docs/delivery.md` and as `Config` itself.
//!
//! The example file follows these conventions (its header says so too):
//! a commented-out line of TOML (`# key = value`, `# [table]`) is code;
//! one ending in `# example` shows a non-default value for a key that is
//! unset by default; a commented-out table header containing `.actor.`
//! starts a per-actor override example, which runs to the next header.

use std::collections::{BTreeMap, BTreeSet};

use courier::config::{BackoffKind, Config, DeliverySettings, PersistenceConfig, SnapshotSettings};
use courier::delivery::{OutboxSettings, Redelivery};
use courier::persistence::PersistentSettings;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/courier.toml");
const GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/delivery.md");

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// What a commented-out line of TOML code in the example stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Commented {
    /// A key in a section, at its default value (or a section header).
    Default,
    /// A key that is unset by default, with an example value.
    Example,
    /// A line of a per-actor override example.
    Override,
}

fn is_header(code: &str) -> bool {
    let code = code.split(" #").next().unwrap_or_default().trim();
    code.starts_with('[') && code.ends_with(']')
}

/// The key of `key = value`, if `code` is an assignment.
fn assigned_key(code: &str) -> Option<&str> {
    let (key, _) = code.split_once(" = ")?;
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    bare.then_some(key)
}

/// The value of `key = value`, without a trailing comment.
fn assigned_value(code: &str) -> Option<&str> {
    let (_, value) = code.split_once(" = ")?;
    Some(value.split(" #").next().unwrap_or_default().trim())
}

/// Each line of the example, with the code it holds if it is commented-out
/// TOML code, and what kind.
fn classify(text: &str) -> Vec<(&str, Option<(&str, Commented)>)> {
    let mut in_override = false;
    text.lines()
        .map(|line| {
            let code = line.strip_prefix("# ");
            let code = code.filter(|c| is_header(c) || assigned_key(c).is_some());
            let header = if is_header(line) {
                Some(line)
            } else {
                code.filter(|c| is_header(c))
            };
            if let Some(header) = header {
                in_override = header.contains(".actor.");
            }
            let kind = code.map(|c| {
                if in_override {
                    Commented::Override
                } else if c.trim_end().ends_with("# example") {
                    Commented::Example
                } else {
                    Commented::Default
                }
            });
            (line, code.zip(kind))
        })
        .collect()
}

/// The example with the commented-out code of the given kinds uncommented.
fn uncomment(text: &str, kinds: &[Commented]) -> (String, usize) {
    let mut uncommented = 0;
    let mut out = String::new();
    for (line, code) in classify(text) {
        match code {
            Some((code, kind)) if kinds.contains(&kind) => {
                uncommented += 1;
                out.push_str(code);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    (out, uncommented)
}

/// Dotted keys of every value in `table`, with per-actor override tables
/// (`<section>.actor.<name>`) folded into their section's keys.
fn leaf_keys(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
    for (key, value) in table {
        if key == "actor" && !prefix.is_empty() {
            let overrides = value.as_table().expect("`actor` holds override tables");
            for one in overrides.values() {
                leaf_keys(one.as_table().expect("an override is a table"), prefix, out);
            }
            continue;
        }
        let full = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value.as_table() {
            Some(inner) => leaf_keys(inner, &full, out),
            None => {
                out.insert(full);
            }
        }
    }
}

/// The rows of the guide's configuration reference table: key and default.
fn documented(guide: &str) -> Vec<(String, String)> {
    let section = guide
        .split("\n## Configuration reference\n")
        .nth(1)
        .expect("docs/delivery.md has a `## Configuration reference` section");
    let section = section.split("\n## ").next().unwrap_or_default();
    let rows: Vec<_> = section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            assert!(
                cells.len() == 6,
                "a row is key | type | default | meaning: {row}"
            );
            (cells[1].trim_matches('`').to_owned(), cells[3].to_owned())
        })
        .collect();
    assert!(
        rows.len() > 10,
        "the reference table was not found: {rows:?}"
    );
    rows
}

/// The fields of the configuration table at `path`, as `Config` names them
/// when it refuses an unknown one; `None` if `path` is not a table of
/// settings.
fn fields_of(path: &[String]) -> Option<Vec<String>> {
    let text = if path.is_empty() {
        "zz_probe = 1\n".to_owned()
    } else {
        format!("[{}]\nzz_probe = 1\n", path.join("."))
    };
    let error = Config::from_str(&text)
        .expect_err("a probe key is refused")
        .to_string();
    if !error.contains("unknown field `zz_probe`") {
        return None;
    }
    let (_, expected) = error
        .split_once("expected")
        .unwrap_or_else(|| panic!("the error names the known fields: {error}"));
    let fields: Vec<String> = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    assert!(!fields.is_empty(), "no fields found in: {error}");
    Some(fields)
}

/// Every key `Config` accepts, by probing it, with per-actor overrides
/// checked to take exactly their section's keys.
fn known_keys(path: &[String], out: &mut BTreeSet<String>) {
    let fields = fields_of(path).unwrap_or_else(|| panic!("{path:?} is a table of settings"));
    for field in &fields {
        if field == "actor" {
            let one = [path, &["actor".to_owned(), "some-name".to_owned()]].concat();
            let mut theirs = fields_of(&one).expect("an override is a table of settings");
            let mut ours = fields.clone();
            theirs.sort();
            ours.sort();
            assert_eq!(
                theirs, ours,
                "overrides in {path:?} take the section's keys"
            );
            continue;
        }
        let child = [path, std::slice::from_ref(field)].concat();
        if fields_of(&child).is_some() {
            known_keys(&child, out);
        } else {
            out.insert(child.join("."));
        }
    }
}

fn difference(a: &BTreeSet<String>, b: &BTreeSet<String>) -> Vec<String> {
    a.difference(b).cloned().collect()
}

#[test]
fn example_file_parses_to_the_defaults() {
    let config = Config::from_file(EXAMPLE).expect("examples/courier.toml is valid");
    assert_eq!(config, Config::default());
}

#[test]
fn commented_out_defaults_are_the_codes_defaults() {
    let (text, uncommented) = uncomment(&read(EXAMPLE), &[Commented::Default]);
    assert!(
        uncommented >= 10,
        "only {uncommented} default lines found:\n{text}"
    );
    let config = Config::from_str(&text).expect("the defaults, uncommented, are valid");
    assert_ne!(
        config,
        Config::default(),
        "uncommenting set nothing:\n{text}"
    );
    assert_eq!(config.persistence, PersistenceConfig::default());
    assert_eq!(config.outbox("any sender"), OutboxSettings::default());
    assert_eq!(config.persistent("any id"), PersistentSettings::default());

    // `backoff.max` and `backoff.jitter` matter only to an exponential
    // backoff: their documented defaults must equal the ones it gets.
    assert_eq!(text.matches("kind = \"fixed\"").count(), 1, "{text}");
    let exponential = text.replace("kind = \"fixed\"", "kind = \"exponential\"");
    let documented = Config::from_str(&exponential).expect("valid");
    let code =
        Config::from_str("[delivery]\nbackoff = { kind = \"exponential\" }\n").expect("valid");
    assert!(matches!(
        documented.outbox("any sender").redelivery,
        Redelivery::Backoff { .. }
    ));
    assert_eq!(documented.outbox("any sender"), code.outbox("any sender"));
}

#[test]
fn examples_of_unset_keys_change_something() {
    let text = read(EXAMPLE);
    let (with_examples, uncommented) = uncomment(&text, &[Commented::Example]);
    assert!(uncommented >= 3, "only {uncommented} example lines found");
    let config = Config::from_str(&with_examples).expect("the example values are valid");
    let outbox = config.outbox("any sender");
    assert!(
        outbox.max_attempts.is_some() && outbox.expire_after.is_some(),
        "{outbox:?}"
    );
    assert!(config.persistent("any id").snapshots.every.is_some());
    let remote = config.remote.expect("the [remote] example is complete");
    assert_eq!(remote.get_ref().settings().node, "billing-node");
}

#[test]
fn guide_table_example_file_and_config_list_the_same_keys() {
    let example = read(EXAMPLE);
    let all = [Commented::Default, Commented::Example, Commented::Override];
    let (text, _) = uncomment(&example, &all);
    let table: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("the example, all uncommented, is TOML: {e}\n{text}"));
    let mut in_example = BTreeSet::new();
    leaf_keys(&table, "", &mut in_example);

    let rows = documented(&read(GUIDE));
    let in_guide: BTreeSet<String> = rows.iter().map(|(key, _)| key.clone()).collect();
    assert_eq!(
        in_guide.len(),
        rows.len(),
        "a key is documented twice: {rows:?}"
    );

    let mut in_config = BTreeSet::new();
    known_keys(&[], &mut in_config);

    assert!(
        in_guide.is_subset(&in_example),
        "documented in docs/delivery.md but missing from examples/courier.toml: {:?}",
        difference(&in_guide, &in_example)
    );
    assert!(
        in_example.is_subset(&in_guide),
        "set in examples/courier.toml but missing from docs/delivery.md: {:?}",
        difference(&in_example, &in_guide)
    );
    assert!(
        in_config.is_subset(&in_guide),
        "accepted by Config but missing from docs/delivery.md: {:?}",
        difference(&in_config, &in_guide)
    );
    assert!(
        in_guide.is_subset(&in_config),
        "documented in docs/delivery.md but refused by Config: {:?}",
        difference(&in_guide, &in_config)
    );
}

#[test]
fn guide_table_defaults_match_the_example_file() {
    let example = read(EXAMPLE);
    let mut in_example = BTreeMap::new();
    let mut table = String::new();
    for (line, code) in classify(&example) {
        let (code, kind) = match code {
            Some((code, kind)) => (code, Some(kind)),
            None => (line, None),
        };
        if is_header(code) {
            let header = code.split(" #").next().unwrap_or_default().trim();
            table = header.trim_matches(['[', ']']).to_owned();
            continue;
        }
        if kind == Some(Commented::Override) || (kind.is_none() && line.starts_with('#')) {
            continue;
        }
        if let (Some(key), Some(value)) = (assigned_key(code), assigned_value(code)) {
            let default = if kind == Some(Commented::Example) {
                None
            } else {
                Some(value.to_owned())
            };
            in_example.insert(format!("{table}.{key}"), default);
        }
    }
    let rows = documented(&read(GUIDE));
    assert_eq!(in_example.len(), rows.len(), "{in_example:?}");
    for (key, documented) in rows {
        match in_example.get(&key) {
            Some(Some(value)) => assert_eq!(documented, format!("`{value}`"), "default of {key}"),
            Some(None) => assert!(documented.starts_with("unset"), "{key} is unset by default"),
            None => panic!("{key} has no default line in examples/courier.toml"),
        }
    }
}

#[test]
fn uncommented_overrides_take_effect_for_their_actor_only() {
    let (text, uncommented) = uncomment(&read(EXAMPLE), &[Commented::Override]);
    assert!(uncommented > 0, "no override examples found");
    let config = Config::from_str(&text).expect("the override examples are valid");
    assert!(
        !config.delivery.actor.is_empty(),
        "no [delivery.actor.<name>] example"
    );
    assert!(
        !config.snapshots.actor.is_empty(),
        "no [snapshots.actor.<id>] example"
    );

    assert_eq!(config.outbox("nobody"), OutboxSettings::default());
    for (name, settings) in &config.delivery.actor {
        let outbox = config.outbox(name);
        assert_ne!(
            outbox,
            OutboxSettings::default(),
            "{name} overrides nothing"
        );
        check_outbox(name, settings.get_ref(), &outbox);
    }

    assert_eq!(config.persistent("nobody"), PersistentSettings::default());
    for (id, settings) in &config.snapshots.actor {
        let persistent = config.persistent(id);
        assert_ne!(
            persistent,
            PersistentSettings::default(),
            "{id} overrides nothing"
        );
        check_snapshots(id, settings.get_ref(), &persistent);
    }
}

fn check_outbox(name: &str, set: &DeliverySettings, outbox: &OutboxSettings) {
    if let Some(interval) = set.redeliver_interval {
        assert_eq!(
            outbox.redelivery.delay(1, 0.5),
            interval,
            "{name}: redeliver_interval"
        );
    }
    if let Some(n) = set.redelivery_burst_limit {
        assert_eq!(outbox.burst_limit, n, "{name}: redelivery_burst_limit");
    }
    if let Some(n) = set.warn_after_attempts {
        assert_eq!(outbox.warn_after_attempts, n, "{name}: warn_after_attempts");
    }
    if let Some(n) = set.max_unconfirmed {
        assert_eq!(outbox.max_unconfirmed, n, "{name}: max_unconfirmed");
    }
    if set.max_attempts.is_some() {
        assert_eq!(
            outbox.max_attempts, set.max_attempts,
            "{name}: max_attempts"
        );
    }
    if set.expire_after.is_some() {
        assert_eq!(
            outbox.expire_after, set.expire_after,
            "{name}: expire_after"
        );
    }
    if let Some(backoff) = &set.backoff {
        let backoff = backoff.get_ref();
        match (backoff.kind, outbox.redelivery) {
            (BackoffKind::Fixed, Redelivery::Fixed { .. }) => {}
            (BackoffKind::Exponential, Redelivery::Backoff { max, jitter, .. }) => {
                assert_eq!(max, backoff.max.unwrap_or(max), "{name}: backoff.max");
                assert_eq!(
                    jitter,
                    backoff.jitter.unwrap_or(jitter),
                    "{name}: backoff.jitter"
                );
            }
            (kind, redelivery) => panic!("{name}: backoff {kind:?} gave {redelivery:?}"),
        }
    }
}

fn check_snapshots(id: &str, set: &SnapshotSettings, persistent: &PersistentSettings) {
    let policy = &persistent.snapshots;
    if set.every.is_some() {
        assert_eq!(policy.every, set.every, "{id}: every");
    }
    if let Some(keep) = set.keep {
        assert_eq!(policy.keep, keep, "{id}: keep");
    }
    if let Some(delete) = set.delete_events {
        assert_eq!(policy.delete_events, delete, "{id}: delete_events");
    }
}

#[test]
fn helpers_see_what_they_should() {
    // The conventions the tests above rely on, on a small sample.
    let sample = "[delivery]\n# A comment = not code, since it has spaces.\n# max_unconfirmed = 100000\n# max_attempts = 20  # example\n# [delivery.actor.x]\n# max_attempts = 3\n";
    let kinds: Vec<_> = classify(sample)
        .into_iter()
        .map(|(_, c)| c.map(|(_, k)| k))
        .collect();
    assert_eq!(
        kinds,
        [
            None,
            None,
            Some(Commented::Default),
            Some(Commented::Example),
            Some(Commented::Override),
            Some(Commented::Override),
        ]
    );
    let mut keys = BTreeSet::new();
    known_keys(&[], &mut keys);
    assert!(keys.contains("delivery.backoff.jitter"), "{keys:?}");
    assert!(keys.contains("persistence.path"), "{keys:?}");
    assert!(!keys.iter().any(|k| k.contains("actor")), "{keys:?}");
}
