//! courier-delivery: at-least-once delivery on top of courier's actors and
//! persistence, a deduplicating inbox for receivers, and TOML configuration.
