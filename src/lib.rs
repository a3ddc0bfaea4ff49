//! provledger: an append-only, signed, hash-chained provenance ledger for
//! container releases.
//!
//! Layers, lowest first; a lower layer never imports a higher one:
//! [`core`] (formats, no I/O) → [`policy`] → [`verify`] (the chain rules) →
//! [`store`] (sled) → [`ledger`] (appends through the store) → the CLI.

pub mod api;
pub mod audit;
pub mod bundle;
pub mod core;
pub mod fsutil;
#[doc(hidden)]
pub mod fuzz;
pub mod gate;
pub mod keyfile;
pub mod ledger;
pub mod manifests;
pub mod policy;
pub mod proof;
pub mod record;
pub mod registry;
pub mod remote;
pub mod server;
pub mod sigcheck;
pub mod store;
pub mod sync;
pub mod tree;
pub mod verify;
