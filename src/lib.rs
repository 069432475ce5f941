//! rehearse: rehearse a database schema upgrade on a copy of live, prove it, then apply exactly
//! that to live. The library holds every stage of the pipeline (DESIGN.md); `src/cmd/` only
//! parses arguments and calls it.

pub mod bookkeeping;
pub mod bundle;
pub mod checkout;
pub mod cmd;
pub mod config;
pub mod copy;
pub mod dburl;
pub mod demo;
pub mod diff;
pub mod engine;
pub mod exit;
pub mod findings;
pub mod fsutil;
pub mod hints;
pub mod interrupt;
pub mod live;
pub mod marks;
pub mod probe;
pub mod process;
pub mod record;
pub mod redact;
pub mod rehearsal;
pub mod report;
pub mod runner;
pub mod schema;
pub mod script;
pub mod sqltext;
pub mod switch;
pub mod target;
pub mod verify;
pub mod workdir;
