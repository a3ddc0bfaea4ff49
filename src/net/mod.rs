//! The network: the HTTP API's types, the server (group commit), its
//! client, mirrors (`sync`), and the OCI registry client. The layer under
//! the CLI; everything below it (ledger, audit, store) knows nothing of it.

pub mod admit;
pub mod api;
pub mod registry;
pub mod remote;
pub mod server;
pub mod sync;
pub mod ui;

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// The TLS crypto provider of every HTTPS client here (registries through
/// oci-client and reqwest, ledger servers through ureq): the process
/// default, made ring on first use unless the program installed one before.
///
/// reqwest is built without a provider of its own (so that aws-lc-rs, a
/// second provider and a C build, stays out), and it panics on building a
/// client when no default is installed: every client is built after this.
pub(crate) fn tls_provider() -> Arc<CryptoProvider> {
    if let Some(p) = CryptoProvider::get_default() {
        return p.clone();
    }
    // Another thread may install one between the two calls: either way a
    // default is installed afterwards.
    let _ = rustls::crypto::ring::default_provider().install_default();
    CryptoProvider::get_default().expect("a default crypto provider is installed").clone()
}
