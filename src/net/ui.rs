//! The audit view served live under `/ui/` by `provledger serve`: the same
//! pages as `provledger report` (see [`crate::audit::site`]), read-only,
//! rendered on request from the ledger the server holds.
//!
//! The server verifies its chain when it starts, in the background: until
//! that is done every page says it is not yet verified and shows nothing;
//! if it fails, every page says so. Entries appended since were each
//! verified by the committer before they were written; the pages take them
//! in as they are asked for.

use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::audit::site::{self, Catalog, Failure, Page, Trust, Verification};
use crate::ledger::Ledger;
use crate::store::Store;
use crate::store::any::LedgerStore;

/// What the pages read: the ledger, what verifying it found, the catalog.
pub struct Ui {
    ledger: Arc<Ledger<LedgerStore>>,
    trust: RwLock<Trust>,
    catalog: RwLock<Catalog>,
    /// Pages rendered at once; more wait (each holds a blocking thread and
    /// store reads the committer also needs).
    rendering: tokio::sync::Semaphore,
}

impl Ui {
    /// The view of `ledger`, not yet verified.
    pub fn new(ledger: Arc<Ledger<LedgerStore>>) -> Arc<Ui> {
        let source = format!("the server's store ({})", ledger.store().describe());
        Arc::new(Ui {
            ledger,
            trust: RwLock::new(Trust::Pending { source, since: site::now_rfc3339() }),
            catalog: RwLock::new(Catalog::default()),
            rendering: tokio::sync::Semaphore::new(RENDERING),
        })
    }

    /// Verifies the chain as it stands (appends may go on meanwhile) and
    /// opens the pages to it, or closes them with the failure.
    pub fn verify(&self) {
        let source = format!("the server's store ({})", self.ledger.store().describe());
        let mut catalog = Catalog::default();
        let size = match self.ledger.store().head() {
            Ok(h) => h.map_or(0, |h| h.count),
            Err(e) => {
                *self.trust.write().expect("trust lock") =
                    Trust::Failed(Failure::new(&source, e.to_string(), None, None));
                return;
            }
        };
        let trust = match self.ledger.verify_prefix(size, |v| catalog.take_verified(v)) {
            Ok((chain, cp)) => Trust::Verified(Verification {
                source,
                scope: format!(
                    "the chain as it stood when the server started (entries 0 to {}), and every entry since as it \
                     was appended",
                    size.saturating_sub(1)
                ),
                genesis: chain.genesis.map(|g| g.to_string()).unwrap_or_default(),
                entries: chain.entries,
                head: chain.head.to_string(),
                checkpoint: (&cp).into(),
                verified_at: site::now_rfc3339(),
                genesis_pinned: false,
            }),
            Err(e) => Trust::Failed(Failure::of(&source, &e)),
        };
        if trust.is_verified() {
            *self.catalog.write().expect("catalog lock") = catalog;
        }
        *self.trust.write().expect("trust lock") = trust;
    }

    /// The page at `path` (relative to `/ui/`): its HTML or JSON, or 404.
    fn answer(&self, path: &str) -> Response {
        let Some((page, json)) = Page::parse(path) else { return not_found() };
        let mut trust = self.trust.read().expect("trust lock").clone();
        if trust.is_verified() {
            // Newer entries were verified on append; a store that went back
            // or forked fails the view for good.
            let caught_up = self.catalog.write().expect("catalog lock").catch_up(&self.ledger);
            match caught_up {
                Ok(()) => {}
                Err(e @ crate::ledger::LedgerError::Verify(_)) => {
                    let source = format!("the server's store ({})", self.ledger.store().describe());
                    trust = Trust::Failed(Failure::of(&source, &e));
                    *self.trust.write().expect("trust lock") = trust.clone();
                }
                Err(e) => return internal(&e),
            }
        }
        let catalog = self.catalog.read().expect("catalog lock");
        if let Trust::Verified(v) = &mut trust {
            // The banner names the checkpoint the pages are read at.
            match self.ledger.checkpoint() {
                Ok(cp) => {
                    v.entries = catalog.size();
                    if let Some(h) = catalog.head() {
                        v.head = h.to_string();
                    }
                    v.checkpoint = (&cp).into();
                }
                Err(e) => return internal(&e),
            }
        }
        let data = site::page_data(&*self.ledger, &catalog, &trust, &page);
        match data {
            Ok(Some(d)) if json => respond("application/json", d.to_json()),
            Ok(Some(d)) => respond("text/html; charset=utf-8", site::render(&d)),
            Ok(None) => not_found(),
            Err(e) => internal(&e),
        }
    }
}

/// Pages leave nothing to run and load nothing from elsewhere.
const POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn respond(content_type: &'static str, body: String) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn not_found() -> Response {
    let mut r = respond(
        "text/html; charset=utf-8",
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>No such page · provledger</title></head>\
         <body><main><h1>No such page</h1><p>The ledger has no such page. <a href=\"/ui/\">Go to the overview</a>.</p></main></body></html>"
            .into(),
    );
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

fn internal(e: &dyn std::fmt::Display) -> Response {
    let mut r = respond("text/plain; charset=utf-8", format!("the ledger could not be read: {e}\n"));
    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    r
}

/// Pages rendered at once.
const RENDERING: usize = 4;

async fn page(State(ui): State<Arc<Ui>>, path: Option<Path<String>>) -> Response {
    let path = path.map(|Path(p)| p).unwrap_or_default();
    let Ok(_turn) = ui.rendering.acquire().await else { return internal(&"shutting down") };
    let answering = ui.clone();
    match tokio::task::spawn_blocking(move || answering.answer(&path)).await {
        Ok(r) => r,
        Err(e) => internal(&e),
    }
}

async fn stylesheet() -> Response {
    let mut r = respond("text/css; charset=utf-8", site::STYLESHEET.to_string());
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    r
}

/// The `/ui/` routes (GET only).
pub fn routes(ui: Arc<Ui>) -> Router {
    let p = site::UI_PREFIX;
    Router::new()
        .route(p, get(|| async { Redirect::permanent(&format!("{}/", site::UI_PREFIX)) }))
        .route(&format!("{p}/"), get(page))
        .route(&format!("{p}/style.css"), get(stylesheet))
        .route(&format!("{p}/{{*path}}"), get(page))
        .with_state(ui)
}
