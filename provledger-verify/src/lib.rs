//! provledger-verify: what an auditor or an admission controller needs to
//! check a provledger ledger, and nothing else.
//!
//! Layers, lowest first; a lower layer never imports a higher one (a test
//! in the main package keeps it so):
//! [`core`] (formats: digests, references, keys, DSSE, statements, entries,
//! signed notes; no I/O) → [`tree`] (RFC 9162, pure) → [`checkpoint`] →
//! [`policy`] → [`gate`] (the promotion decision, pure) → [`sigcheck`] and
//! [`verify`] (the chain rules) → [`bundle`] and [`proof`] (offline
//! verification from the genesis hash alone) → [`promoted`] ("is this
//! digest promoted into ENV", from a verified chain or proof).
//!
//! This crate never opens a store, starts an async runtime, speaks HTTP or
//! asks a registry; it reads bytes it is given.
//!
//! Checking a promotion proof (`provledger prove`) offline, with nothing
//! but the genesis hash:
//!
//! ```
//! use provledger_verify::{core::hash::EntryHash, proof::PromotionProof};
//!
//! # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../ledger-format/vectors/proof-accept-chain.json");
//! # let vector: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir).unwrap()).unwrap();
//! # let (proof_json, genesis_hex) = (vector["proof"].to_string(), vector["genesis"].as_str().unwrap());
//! let genesis = EntryHash::parse(genesis_hex)?;
//! let proof = PromotionProof::parse(proof_json.as_bytes())?;
//! let shown = proof.verify(&genesis)?; // every signature, role, gate and inclusion proof
//! assert_eq!(shown.environment, "dev");
//! println!("{} promoted to {} by entry {}", shown.digest, shown.environment, shown.promotion.index);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bundle;
pub mod checkpoint;
pub mod core;
pub mod gate;
pub mod policy;
pub mod promoted;
pub mod proof;
pub mod sigcheck;
pub mod tree;
pub mod verify;
