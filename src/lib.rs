//! provledger: an append-only, signed, hash-chained provenance ledger for
//! container releases.
//!
//! Layers, lowest first; a lower layer never imports a higher one:
//! [`core`] (formats, no I/O) → [`policy`] → [`verify`] (the chain rules) →
//! [`store`] (sled) → [`ledger`] (appends through the store) → the CLI.

pub use provledger_verify::{bundle, checkpoint, core, gate, policy, sigcheck, tree, verify};

pub mod api;
pub mod audit;
pub mod fsutil;
#[doc(hidden)]
pub mod fuzz;
pub mod keyfile;
pub mod ledger;
pub mod manifests;
pub mod proof;
pub mod record;
pub mod registry;
pub mod remote;
pub mod server;
pub mod store;
pub mod sync;
