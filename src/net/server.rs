//! `provledger serve`: one ledger, many writers, over HTTP (API v1, see
//! [`crate::api`]).
//!
//! Submissions are checked in the request handler first (size, JSON, DSSE
//! limits, every signature against the policy in force, replay), so a flood
//! of bad submissions costs handler time but never a place in the queue.
//! What passes goes into one bounded queue; a single committer thread takes
//! everything queued, runs each statement through the same chain rules as a
//! local append ([`Ledger::append_group_prepared`]: the signature checks the
//! handler made are used, not made again), and writes the accepted ones in
//! one atomic, durable write: group commit. A submitter is answered only
//! after that write is flushed, with the entry, the signed checkpoint that
//! includes it and the inclusion proof.
//!
//! Connections are bounded before any request is read: a client must send
//! its request headers within [`Config::header_timeout`] or be disconnected,
//! and at most [`Config::max_connections`] connections are open at once, at
//! most [`Config::max_connections_per_peer`] from one address. A connection
//! over either cap is answered 503 and closed without being read, so slow or
//! idle clients cannot hold the server.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::api::{self, Ack, DecisionReply, DecisionRequest, Info, Proof, Refusal, SubjectEntry, Subjects};
use crate::bundle;
use crate::core::digest::Digest;
use crate::core::dsse::Envelope;
use crate::core::entry::envelope_fingerprint;
use crate::core::keys::KeyId;
use crate::core::statement::Predicate;
use crate::gate::{self, Decision};
use crate::ledger::{Ledger, LedgerError};
use crate::policy::Policy;
use crate::sigcheck::{self, Keyring};
use crate::store::any::LedgerStore;
use crate::store::log::LogError;
use crate::store::{Store, StoreError};
use crate::tree::Hash;
use crate::verify::{self, Failure, Prepared, VerifiedEntry, VerifyError};

/// Limits and sizes of a server.
#[derive(Clone, Debug)]
pub struct Config {
    /// Most submissions written in one group commit.
    pub max_batch: usize,
    /// Most submissions waiting for the committer; beyond it, 503.
    pub queue: usize,
    /// Longest a request may take, queueing included.
    pub request_timeout: Duration,
    /// Largest request body.
    pub max_body: usize,
    /// Longest a client may take to send a request's headers (the first
    /// request's, or the next one's on a kept-alive connection); then the
    /// connection is closed.
    pub header_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one IP address.
    pub max_connections_per_peer: usize,
}

/// Default of [`Config::header_timeout`], in seconds.
pub const HEADER_TIMEOUT_SECS: u64 = 10;
/// Default of [`Config::max_connections`]: well below the usual 1024 open
/// files, which the store needs some of.
pub const MAX_CONNECTIONS: usize = 512;
/// Default of [`Config::max_connections_per_peer`]: many CI runners behind one
/// NAT address still fit, one client cannot take every connection.
pub const MAX_CONNECTIONS_PER_PEER: usize = 64;

impl Default for Config {
    fn default() -> Config {
        Config {
            max_batch: 4096,
            queue: 16384,
            request_timeout: Duration::from_secs(30),
            max_body: api::MAX_BODY,
            header_timeout: Duration::from_secs(HEADER_TIMEOUT_SECS),
            max_connections: MAX_CONNECTIONS,
            max_connections_per_peer: MAX_CONNECTIONS_PER_PEER,
        }
    }
}

/// What the committer says of one submission.
type Outcome = Result<Committed, Refused>;

/// One submission: a statement, or (`atomic`) statements appended all or none.
struct Job {
    envelopes: Vec<Envelope>,
    /// Each envelope's statement and signature checks, made by the handler
    /// (the committer does not check them again).
    prepared: Vec<Prepared>,
    atomic: bool,
    reply: oneshot::Sender<Vec<Outcome>>,
}

/// A durably written entry and the checkpoint written with it.
struct Committed {
    index: u64,
    hash: String,
    bytes: Vec<u8>,
    checkpoint: String,
    size: u64,
}

#[derive(Clone)]
struct Refused {
    status: StatusCode,
    refusal: Refusal,
}

impl Refused {
    fn new(status: StatusCode, error: &str, reason: impl Into<String>, index: Option<u64>) -> Refused {
        Refused { status, refusal: Refusal { error: error.into(), reason: reason.into(), index } }
    }

    fn verify(e: VerifyError) -> Refused {
        let (status, error) = match e.failure {
            Failure::Denied => (StatusCode::FORBIDDEN, "unauthorized"),
            Failure::Invalid | Failure::Newer => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            // The store failed under the check (its database failing
            // over, say): nothing was written; the same statement can be
            // resubmitted.
            Failure::Io => (StatusCode::SERVICE_UNAVAILABLE, "resubmit"),
        };
        Refused::new(status, error, e.to_string(), Some(e.index))
    }

    fn internal(e: impl std::fmt::Display) -> Refused {
        Refused::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string(), None)
    }

    /// A store that is unavailable (its database failing over, say) asks
    /// for a resubmission; anything else is internal.
    fn store(e: StoreError) -> Refused {
        if asks_resubmission(&e) { Refused::resubmit(&e) } else { Refused::internal(e) }
    }

    /// `503 resubmit`: nothing is known to be written; the same statement
    /// can be submitted again.
    fn resubmit(why: &dyn std::fmt::Display) -> Refused {
        Refused::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "resubmit",
            format!("{why}; resubmit the same statement to learn its fate"),
            None,
        )
    }

    fn malformed(reason: impl Into<String>) -> Refused {
        Refused::new(StatusCode::BAD_REQUEST, "malformed", reason, None)
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.refusal)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        r
    }
}

impl From<LedgerError> for Refused {
    fn from(e: LedgerError) -> Refused {
        match e {
            LedgerError::Verify(v) => Refused::verify(v),
            LedgerError::Store(e) => Refused::store(e),
            other => Refused::internal(other),
        }
    }
}

struct Shared {
    ledger: Arc<Ledger<LedgerStore>>,
    queue: mpsc::Sender<Job>,
    /// The policy in force, for the handlers' signature pre-check; the
    /// committer replaces it after appending a policy entry.
    policy: Arc<RwLock<Arc<Policy>>>,
    timeout: Duration,
}

type AppState = Arc<Shared>;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Serves `ledger` on `listener` until SIGINT or SIGTERM, then drains: the
/// queue is committed before the function returns.
pub fn run(ledger: Ledger<LedgerStore>, listener: std::net::TcpListener, config: Config) -> std::io::Result<()> {
    let ledger = Arc::new(ledger);
    let (_, policy) = ledger.policy().map_err(std::io::Error::other)?;
    let policy = Arc::new(RwLock::new(policy));
    let (tx, rx) = mpsc::channel::<Job>(config.queue);
    let committer = {
        let ledger = ledger.clone();
        let policy = policy.clone();
        let max_batch = config.max_batch;
        std::thread::Builder::new()
            .name("committer".into())
            .spawn(move || commit_loop(&ledger, rx, &policy, max_batch))?
    };
    // The wait for the committer ends a little before the request's own
    // timeout, so that the submitter learns to resubmit (503) rather than
    // meeting a bare 408.
    let timeout = config.request_timeout.mul_f64(0.9);
    // The audit view verifies the chain in the background; its pages say
    // so until it is done.
    let ui = crate::net::ui::Ui::new(ledger.clone());
    {
        let ui = ui.clone();
        std::thread::Builder::new().name("ui verifier".into()).spawn(move || ui.verify())?;
    }
    let state = Arc::new(Shared { ledger, queue: tx, policy, timeout });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let ui = crate::net::ui::routes(ui).layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ));
        let app = router(state, &config).merge(ui);
        accept_loop(listener, app, &config, None).await
    });
    // The router (and with it the queue's sender) is gone: the committer
    // drains what is queued and stops.
    drop(runtime);
    let _ = committer.join();
    result
}

fn router(state: AppState, config: &Config) -> Router {
    let p = api::PREFIX;
    Router::new()
        .route(&format!("{p}/info"), get(info))
        .route(&format!("{p}/checkpoint"), get(checkpoint))
        .route(&format!("{p}/entries"), post(submit).get(entries))
        .route(&format!("{p}/entries/batch"), post(submit_batch))
        .route(&format!("{p}/proof/inclusion"), get(inclusion))
        .route(&format!("{p}/proof/consistency"), get(consistency))
        .route(&format!("{p}/subjects/{{digest}}"), get(subjects))
        .route(&format!("{p}/decision"), post(decision))
        .layer(DefaultBodyLimit::max(config.max_body))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, config.request_timeout))
        .with_state(state)
}

/// Connections open, in all and by peer address.
struct Connections {
    max: usize,
    max_per_peer: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// A connection's place under the caps, given back when it closes.
struct Slot {
    connections: Arc<Connections>,
    peer: IpAddr,
}

impl Connections {
    /// A slot for a new connection from `peer`, unless a cap is reached.
    fn admit(self: &Arc<Connections>, peer: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().expect("connection count lock");
        let (total, by_peer) = &mut *open;
        let mine = by_peer.get(&peer).copied().unwrap_or(0);
        if *total >= self.max || mine >= self.max_per_peer {
            return None;
        }
        *total += 1;
        by_peer.insert(peer, mine + 1);
        Some(Slot { connections: self.clone(), peer })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.connections.open.lock().expect("connection count lock");
        let (total, by_peer) = &mut *open;
        *total -= 1;
        if let Some(n) = by_peer.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                by_peer.remove(&self.peer);
            }
        }
    }
}

/// The answer a connection over a cap gets before it is closed, unread.
fn busy_response() -> Vec<u8> {
    let body = serde_json::to_string(&Refusal {
        error: "busy".into(),
        reason: "too many connections; retry after a second".into(),
        index: None,
    })
    .expect("json");
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Accepts connections until SIGINT or SIGTERM, each served as HTTP/1.1
/// (inside TLS when `tls` is given; the handshake must end within the
/// header timeout) under the header timeout and the connection caps; then
/// lets the open ones finish (within the request timeout) and returns.
pub(crate) async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: Router,
    config: &Config,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<()> {
    let connections = Arc::new(Connections {
        max: config.max_connections.max(1),
        max_per_peer: config.max_connections_per_peer.max(1),
        open: Mutex::new((0, HashMap::new())),
    });
    let busy = busy_response();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors: wait for connections to close
                    // rather than spin or stop serving. Anything else (a
                    // connection reset before it was accepted) is its own.
                    use rustix::io::Errno;
                    if matches!(Errno::from_io_error(&e), Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM)) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            },
        };
        let Some(slot) = connections.admit(peer.ip()) else {
            // Best effort: the 503 fits in any socket buffer, and is never
            // waited on.
            let _ = stream.try_write(&busy);
            drop(stream);
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let stopped = stopped.clone();
        let (header_timeout, drain) = (config.header_timeout, config.request_timeout);
        let tls = tls.clone();
        tasks.spawn(async move {
            let _slot = slot;
            let _ = stream.set_nodelay(true);
            match tls {
                None => serve_http(stream, service, header_timeout, drain, stopped).await,
                Some(acceptor) => {
                    if let Ok(Ok(stream)) = tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                        serve_http(stream, service, header_timeout, drain, stopped).await
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Serves one connection as HTTP/1.1 until it closes, or until `stopped`
/// changes (then it finishes within `drain`).
async fn serve_http<I>(
    io: I,
    service: hyper_util::service::TowerToHyperService<Router>,
    header_timeout: Duration,
    drain: Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(header_timeout);
    let conn = http.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopped.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(drain, conn).await;
        }
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// The committer: one group commit per turn, of everything queued (an
/// all-or-none batch is written on its own).
fn commit_loop(ledger: &Ledger<LedgerStore>, mut rx: mpsc::Receiver<Job>, policy: &RwLock<Arc<Policy>>, max: usize) {
    while let Some(first) = rx.blocking_recv() {
        let mut queued = first.envelopes.len();
        let mut jobs = std::collections::VecDeque::from([first]);
        while queued < max {
            match rx.try_recv() {
                Ok(j) => {
                    queued += j.envelopes.len();
                    jobs.push_back(j);
                }
                Err(_) => break,
            }
        }
        let mut new_policy = false;
        while let Some(job) = jobs.pop_front() {
            if job.atomic {
                new_policy |= commit_atomic(ledger, job);
                continue;
            }
            let mut group = vec![job];
            while jobs.front().is_some_and(|j| !j.atomic) {
                group.extend(jobs.pop_front());
            }
            new_policy |= commit_group(ledger, group);
        }
        if new_policy && let Ok((_, p)) = ledger.policy() {
            *policy.write().expect("policy lock") = p;
        }
    }
}

/// The checkpoint note and size just written (only the committer writes).
/// The size is the note's own: another server on the same database may
/// have written a later checkpoint by now, which holds this one's entries.
fn written(ledger: &Ledger<LedgerStore>) -> Result<(String, u64), Refused> {
    let note = ledger.store().checkpoint().map_err(Refused::store)?;
    let note = note.ok_or_else(|| Refused::internal("written, but no checkpoint could be read back"))?;
    let body = note.split_once("\n\n").map_or("", |(text, _)| text);
    let size = crate::core::note::Checkpoint::parse(body).map_err(Refused::internal)?.size;
    Ok((note, size))
}

fn committed(v: &VerifiedEntry, (note, size): &(String, u64)) -> Committed {
    Committed {
        index: v.index(),
        hash: v.hash().to_string(),
        bytes: v.entry().encode(),
        checkpoint: note.clone(),
        size: *size,
    }
}

/// Single statements, each accepted or refused on its own, in one write.
/// Returns whether a policy entry was appended.
fn commit_group(ledger: &Ledger<LedgerStore>, jobs: Vec<Job>) -> bool {
    // A submitter that gave up still has its statement written (a
    // resubmission is then answered as a duplicate, naming the entry).
    let mut envelopes = Vec::new();
    let mut prepared = Vec::new();
    let jobs: Vec<Job> = jobs
        .into_iter()
        .map(|mut j| {
            envelopes.extend(j.envelopes.iter().cloned());
            prepared.append(&mut j.prepared);
            j
        })
        .collect();
    let copies = envelopes.clone();
    let mut appended = ledger.append_group_prepared(envelopes, prepared, now());
    // Another server on the same database moved the head since this one
    // read it: the group is verified again against the new head (its
    // signatures checked here this time) and retried.
    for _ in 0..HEAD_MOVED_RETRIES {
        if !matches!(appended, Err(LedgerError::Store(StoreError::HeadMoved))) {
            break;
        }
        std::thread::sleep(Duration::from_micros(rand::random_range(100..2_000)));
        appended = ledger.append_group(copies.clone(), now());
    }
    match appended {
        Ok(results) => {
            let note = written(ledger);
            let policy = results.iter().any(|r| r.as_ref().is_ok_and(|v| v.new_policy().is_some()));
            let mut results = results.into_iter();
            for job in jobs {
                let outcomes =
                    results
                        .by_ref()
                        .zip(&job.envelopes)
                        .take(job.envelopes.len())
                        .map(|(r, envelope)| match (r, &note) {
                            (Ok(v), Ok(n)) => Ok(committed(&v, n)),
                            (Ok(_), Err(e)) => Err(e.clone()),
                            (Err(e), _) => Err(duplicate(ledger, &envelope_fingerprint(envelope))
                                .unwrap_or_else(|| Refused::verify(e))),
                        })
                        .collect();
                let _ = job.reply.send(outcomes);
            }
            policy
        }
        Err(e) => {
            let refused = refused_for(&e);
            for job in jobs {
                let _ = job.reply.send(job.envelopes.iter().map(|_| Err(refused.clone())).collect());
            }
            false
        }
    }
}

/// How often a group whose head moved under it (another server on the same
/// database) is verified and tried again before the submitters are told to
/// resubmit.
const HEAD_MOVED_RETRIES: usize = 64;

/// The refusal of a whole group that could not be written: "resubmit" when
/// the store was unavailable or kept moving (the outcome of a commit cut
/// off by a failover is unknown; resubmitting the same statement is
/// answered with its entry if it was written), else an internal error.
fn refused_for(e: &LedgerError) -> Refused {
    match e {
        LedgerError::Store(s) if asks_resubmission(s) => Refused::resubmit(&format!("not committed: {e}")),
        _ => Refused::internal(format!("nothing written: {e}")),
    }
}

/// Store errors after which a resubmission may succeed: the database is
/// unavailable, or the head kept moving under several servers.
fn asks_resubmission(e: &StoreError) -> bool {
    matches!(e, StoreError::HeadMoved | StoreError::Log(LogError::Unavailable(_)))
}

/// The refusal of a statement that an entry already holds, naming that
/// entry: one written since the handler's replay check, by this very group
/// commit (the same statement submitted twice at once) or an earlier one.
fn duplicate(ledger: &Ledger<LedgerStore>, fingerprint: &[u8; 32]) -> Option<Refused> {
    let index = ledger.store().envelope_entry(fingerprint).ok()??;
    Some(Refused::new(
        StatusCode::CONFLICT,
        "duplicate",
        format!("the same signed statement is already entry {index}"),
        Some(index),
    ))
}

/// Statements appended all or none, in one write of their own.
fn commit_atomic(ledger: &Ledger<LedgerStore>, job: Job) -> bool {
    let n = job.envelopes.len();
    let mut policy = false;
    let fingerprints: Vec<[u8; 32]> = job.envelopes.iter().map(envelope_fingerprint).collect();
    let outcomes: Vec<Outcome> = match ledger.append_batch_prepared(job.envelopes, Some(job.prepared), now()) {
        Ok(vs) => {
            policy = vs.iter().any(|v| v.new_policy().is_some());
            match written(ledger) {
                Ok(w) => vs.iter().map(|v| Ok(committed(v, &w))).collect(),
                Err(e) => (0..n).map(|_| Err(e.clone())).collect(),
            }
        }
        Err(LedgerError::Verify(v)) => {
            let r = fingerprints.iter().find_map(|f| duplicate(ledger, f)).unwrap_or_else(|| Refused::verify(v));
            (0..n).map(|_| Err(r.clone())).collect()
        }
        Err(e) => {
            let r = refused_for(&e);
            (0..n).map(|_| Err(r.clone())).collect()
        }
    };
    let _ = job.reply.send(outcomes);
    policy
}

/// Parses and pre-checks one submitted envelope: limits, replay, and every
/// signature against the policy in force. Runs in the handler, so that only
/// statements signed by keys of the policy reach the committer.
fn precheck(s: &Shared, value: serde_json::Value) -> Result<(Envelope, Prepared), Refused> {
    let envelope =
        Envelope::from_json_value(value).map_err(|e| Refused::malformed(format!("not a DSSE envelope: {e}")))?;
    envelope.check_limits().map_err(|e| Refused::malformed(e.to_string()))?;
    let fp = envelope_fingerprint(&envelope);
    if let Some(index) = s.ledger.store().envelope_entry(&fp).map_err(Refused::store)? {
        return Err(Refused::new(
            StatusCode::CONFLICT,
            "duplicate",
            format!("the same signed statement is already entry {index}"),
            Some(index),
        ));
    }
    let policy = s.policy.read().expect("policy lock").clone();
    // The checks are kept for the committer, which uses each only where the
    // policy in force there names the very key it was made with.
    let mut keyring: Keyring = policy.keys().map(|(_, k)| &k.public).collect();
    let prepared = verify::prepare(&[&envelope], &mut keyring, sigcheck::Mode::Batch).pop().expect("one envelope");
    if let Err((failure, why)) = verify::envelope_signers_checked(&policy, &envelope, prepared.signatures()) {
        let (status, error) = match failure {
            Failure::Denied => (StatusCode::FORBIDDEN, "unauthorized"),
            _ => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        };
        return Err(Refused::new(status, error, why, None));
    }
    Ok((envelope, prepared))
}

/// Queues a job and waits for the committer's answer.
async fn enqueue(s: &Shared, checked: Vec<(Envelope, Prepared)>, atomic: bool) -> Result<Vec<Ack>, Refused> {
    let (reply, answer) = oneshot::channel();
    let (envelopes, prepared) = checked.into_iter().unzip();
    s.queue.try_send(Job { envelopes, prepared, atomic, reply }).map_err(|e| match e {
        mpsc::error::TrySendError::Full(_) => Refused::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "the commit queue is full; retry after a second",
            None,
        ),
        mpsc::error::TrySendError::Closed(_) => Refused::internal("the server is shutting down"),
    })?;
    let outcomes = tokio::time::timeout(s.timeout, answer)
        .await
        .map_err(|_| {
            Refused::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "not committed in time; resubmit the same statement to learn its fate",
                None,
            )
        })?
        .map_err(|_| Refused::internal("the committer stopped"))?;
    let mut acks = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        let c = o?;
        let proof = s.ledger.inclusion_proof(c.index, c.size)?;
        acks.push(Ack {
            index: c.index,
            hash: c.hash,
            entry: c.bytes,
            checkpoint: c.checkpoint,
            inclusion: hash_list(&proof),
        });
    }
    Ok(acks)
}

fn parse_body(body: &[u8]) -> Result<serde_json::Value, Refused> {
    serde_json::from_slice(body).map_err(|e| Refused::malformed(format!("the body is not JSON: {e}")))
}

async fn submit(State(s): State<AppState>, body: Bytes) -> Result<Response, Refused> {
    let checked = precheck(&s, parse_body(&body)?)?;
    let ack = enqueue(&s, vec![checked], false).await?.pop().expect("one outcome per statement");
    Ok((StatusCode::CREATED, axum::Json(ack)).into_response())
}

/// Statements appended all or none (a release promotion).
async fn submit_batch(State(s): State<AppState>, body: Bytes) -> Result<Response, Refused> {
    let serde_json::Value::Array(items) = parse_body(&body)? else {
        return Err(Refused::malformed("expected a JSON array of DSSE envelopes"));
    };
    if items.is_empty() || items.len() > api::MAX_BATCH {
        return Err(Refused::malformed(format!("a batch holds 1 to {} statements", api::MAX_BATCH)));
    }
    let envelopes = items.into_iter().map(|v| precheck(&s, v)).collect::<Result<Vec<_>, _>>()?;
    let acks = enqueue(&s, envelopes, true).await?;
    Ok((StatusCode::CREATED, axum::Json(acks)).into_response())
}

/// Proof hashes as the API's bodies carry them.
fn hash_list(proof: &[Hash]) -> Vec<Vec<u8>> {
    proof.iter().map(|h| h.to_vec()).collect()
}

fn size(ledger: &Ledger<LedgerStore>) -> Result<u64, Refused> {
    Ok(ledger.store().head().map_err(Refused::store)?.map_or(0, |h| h.count))
}

async fn info(State(s): State<AppState>) -> Result<axum::Json<Info>, Refused> {
    let genesis = s.ledger.genesis_hash()?.map(|g| g.to_string()).unwrap_or_default();
    let cp = s.ledger.checkpoint()?;
    Ok(axum::Json(Info { api: 1, genesis, log_verifier_key: cp.verifier.to_text(), size: cp.checkpoint.size }))
}

async fn checkpoint(State(s): State<AppState>) -> Result<Response, Refused> {
    let note = s.ledger.store().checkpoint().map_err(Refused::store)?.ok_or_else(|| Refused::internal("empty"))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

#[derive(Deserialize)]
struct Range {
    start: u64,
    end: Option<u64>,
}

async fn entries(State(s): State<AppState>, Query(r): Query<Range>) -> Result<Response, Refused> {
    let size = size(&s.ledger)?;
    let end = r.end.unwrap_or(u64::MAX).min(size).min(r.start.saturating_add(api::MAX_RANGE));
    if r.start > end {
        return Err(Refused::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("start {} is beyond the ledger's {size} entries", r.start),
            None,
        ));
    }
    let mut list = Vec::with_capacity((end - r.start) as usize);
    for index in r.start..end {
        let bytes = s
            .ledger
            .store()
            .get(index)
            .map_err(Refused::store)?
            .ok_or_else(|| Refused::internal(format!("entry {index} is missing")))?;
        list.push(bytes);
    }
    let body = bundle::encode_frames(list.iter().map(|b| b.as_slice()));
    Ok(([(header::CONTENT_TYPE, api::ENTRIES_MEDIA_TYPE)], body).into_response())
}

#[derive(Deserialize)]
struct InclusionQuery {
    index: u64,
    size: u64,
}

async fn inclusion(State(s): State<AppState>, Query(q): Query<InclusionQuery>) -> Result<axum::Json<Proof>, Refused> {
    let proof = s.ledger.inclusion_proof(q.index, q.size).map_err(out_of_range)?;
    Ok(axum::Json(Proof { hashes: hash_list(&proof) }))
}

#[derive(Deserialize)]
struct ConsistencyQuery {
    from: u64,
    to: u64,
}

async fn consistency(
    State(s): State<AppState>,
    Query(q): Query<ConsistencyQuery>,
) -> Result<axum::Json<Proof>, Refused> {
    let proof = s.ledger.consistency_proof(q.from, q.to).map_err(out_of_range)?;
    Ok(axum::Json(Proof { hashes: hash_list(&proof) }))
}

fn out_of_range(e: LedgerError) -> Refused {
    match e {
        LedgerError::Tree(t) => Refused::new(StatusCode::NOT_FOUND, "not_found", t.to_string(), None),
        other => other.into(),
    }
}

async fn subjects(State(s): State<AppState>, Path(digest): Path<String>) -> Result<axum::Json<Subjects>, Refused> {
    let d: Digest = digest.parse().map_err(|e| Refused::malformed(format!("digest: {e}")))?;
    let mut entries = Vec::new();
    for index in s.ledger.store().entries_for_subject(&d).map_err(Refused::store)? {
        let e = s.ledger.read(index)?;
        let kind = match e.statement.predicate {
            Predicate::Build(_) => "build",
            Predicate::Validation(_) => "validation",
            Predicate::Promotion(_) => "promotion",
            Predicate::Policy(_) => "policy",
        };
        entries.push(SubjectEntry { index, hash: e.entry.hash(), kind: kind.into() });
    }
    Ok(axum::Json(Subjects { digest: d.to_string(), entries }))
}

async fn decision(
    State(s): State<AppState>,
    axum::Json(q): axum::Json<DecisionRequest>,
) -> Result<axum::Json<DecisionReply>, Refused> {
    let digest: Digest = q.digest.parse().map_err(|e| Refused::malformed(format!("digest: {e}")))?;
    let promoter = KeyId::parse(&q.promoter).map_err(|e| Refused::malformed(format!("promoter: {e}")))?;
    let request = gate::Request { digest: Some(digest), to: &q.to, promoter, tag: None };
    Ok(axum::Json(match s.ledger.decide(&request)? {
        Decision::Allow(a) => {
            DecisionReply { allowed: true, reasons: Vec::new(), build: Some(a.build), validations: a.validations }
        }
        Decision::Deny(reasons) => DecisionReply { allowed: false, reasons, build: None, validations: Vec::new() },
    }))
}

/// The address a server listens on, as printed for scripts.
pub fn describe(addr: SocketAddr) -> String {
    format!("http://{addr}")
}
