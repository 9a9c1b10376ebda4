//! What the remote tests share: the message types and a receiver that
//! records them. Each test file uses part of it.
#![allow(dead_code)]

pub mod certs;

use std::sync::{Arc, Mutex};

use courier_core::{Actor, BoxError, Context};
use courier_remote::Registry;
use serde::{Deserialize, Serialize};

/// The secret the tests' nodes share.
pub const SECRET: &str = "a shared secret of some length";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Charge {
    pub account: String,
    pub cents: u64,
}

pub fn charge(cents: u64) -> Charge {
    Charge {
        account: "acme".into(),
        cents,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refund(pub u64);

/// Records every charge it receives.
pub struct Billing {
    pub seen: Arc<Mutex<Vec<Charge>>>,
}

impl Actor for Billing {
    type Msg = Charge;

    async fn handle(&mut self, msg: Charge, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.seen.lock().expect("lock").push(msg);
        Ok(())
    }
}

/// Charges and refunds.
pub fn billing_registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register::<Charge>("billing.Charge/1")
        .expect("register")
        .register::<Refund>("billing.Refund/1")
        .expect("register");
    registry
}
