//! provledger: an append-only, signed, hash-chained provenance ledger for
//! container releases.
//!
//! Layers, lowest first; a lower layer never imports a higher one
//! (`tests/layers.rs` keeps it so):
//!
//! - the auditor's crate, [`provledger_verify`], re-exported here under its
//!   module names ([`core`], [`tree`], [`checkpoint`], [`policy`], [`gate`],
//!   [`sigcheck`], [`verify`], [`bundle`]);
//! - [`files`]: bounded reads, link-safe writes, key files;
//! - [`store`]: the `Store` trait and sled;
//! - [`ledger`]: appends through the store, replication, statement builders;
//! - [`audit`]: audit answers, release metadata, manifest checks, proving;
//! - [`net`]: the HTTP API, server, client, mirrors, registry;
//! - the CLI (the binary), the only place that prints or sets exit codes.

pub use provledger_verify::{bundle, checkpoint, core, gate, policy, promoted, sigcheck, tree, verify};

pub mod audit;
pub mod files;
#[doc(hidden)]
pub mod fuzz;
pub mod ledger;
pub mod net;
pub mod store;

// The paths modules had before they were grouped by layer.
pub use audit::{manifests, proof};
pub use files::{fsutil, keyfile};
pub use ledger::record;
pub use net::{api, registry, remote, server, sync};
