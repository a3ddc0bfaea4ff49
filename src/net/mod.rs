//! The network: the HTTP API's types, the server (group commit), its
//! client, mirrors (`sync`), and the OCI registry client. The layer under
//! the CLI; everything below it (ledger, audit, store) knows nothing of it.

pub mod api;
pub mod registry;
pub mod remote;
pub mod server;
pub mod sync;
