//! Two actors play ping-pong through the courier facade.
//!
//! `ponger` answers every `Ping` with a `Pong` to whoever sent it; `pinger`
//! serves a number of rounds, then reports how long they took through an
//! `ask`. Run with `cargo run --release --example ping_pong -- [ROUNDS]`
//! (`--help` for the options). Logs go to standard error (warnings and
//! errors unless `RUST_LOG` says otherwise, e.g. `RUST_LOG=courier_core=debug`).

use std::time::{Duration, Instant};

use clap::Parser;
use courier::prelude::*;

enum PongMsg {
    Ping { n: u64, reply_to: ActorRef<PingMsg> },
}

enum PingMsg {
    Start {
        rounds: u64,
        done: ReplyTo<Duration>,
    },
    Pong {
        n: u64,
    },
}

struct Ponger;

impl Actor for Ponger {
    type Msg = PongMsg;

    async fn handle(&mut self, msg: PongMsg, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let PongMsg::Ping { n, reply_to } = msg;
        reply_to.tell(PingMsg::Pong { n });
        Ok(())
    }
}

struct Pinger {
    ponger: ActorRef<PongMsg>,
    rounds: u64,
    started: Option<Instant>,
    done: Option<ReplyTo<Duration>>,
}

impl Actor for Pinger {
    type Msg = PingMsg;

    async fn handle(&mut self, msg: PingMsg, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        match msg {
            PingMsg::Start { rounds, done } => {
                self.rounds = rounds;
                self.started = Some(Instant::now());
                self.done = Some(done);
                self.ponger.tell(PongMsg::Ping {
                    n: 1,
                    reply_to: ctx.myself(),
                });
            }
            PingMsg::Pong { n } if n < self.rounds => {
                self.ponger.tell(PongMsg::Ping {
                    n: n + 1,
                    reply_to: ctx.myself(),
                });
            }
            PingMsg::Pong { n } => {
                if n != self.rounds {
                    return Err(format!("pong {n} arrived after the last round").into());
                }
                let elapsed = self.started.map(|s| s.elapsed()).unwrap_or_default();
                if let Some(done) = self.done.take() {
                    done.reply(elapsed);
                }
            }
        }
        Ok(())
    }
}

/// Two actors play ping-pong; prints how long the rounds took.
#[derive(Parser)]
#[command(name = "ping_pong", after_help = LOGS_HELP)]
struct Args {
    /// How many ping-pong rounds to play.
    #[arg(default_value_t = 100_000)]
    rounds: u64,
}

#[path = "support/logging.rs"]
mod logging;

const LOGS_HELP: &str = "Logs go to standard error, warnings and errors by default; \
set RUST_LOG to see more, e.g. RUST_LOG=courier_core=debug.";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args { rounds } = Args::parse();
    logging::init_tracing()?;
    let system = ActorSystem::new("ping-pong");
    system.spawn(Props::new(|| Ponger).with_name("ponger"))?;
    // Resolve by path, as a durable layer would after a restart.
    let ponger = system.lookup::<PongMsg>("/user/ponger")?;
    let ponger_path = ponger.path().clone();
    let pinger = system.spawn(
        Props::new(move || Pinger {
            ponger: ponger.clone(),
            rounds: 0,
            started: None,
            done: None,
        })
        .with_name("pinger"),
    )?;

    let elapsed = pinger
        .ask(
            |done| PingMsg::Start { rounds, done },
            Duration::from_secs(120),
        )
        .await?;
    let per_second = rounds as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
    println!(
        "{rounds} ping-pong rounds in {:.1} ms ({:.0} round trips/s) between {} and {}",
        elapsed.as_secs_f64() * 1000.0,
        per_second,
        pinger.path(),
        ponger_path,
    );
    system.shutdown().await;
    Ok(())
}
