//! `provledger admit`: a Kubernetes validating admission webhook that lets
//! a workload run only if every image it names is digest-pinned and
//! promoted into one environment by the ledger.
//!
//! It answers `admission.k8s.io/v1` AdmissionReview requests on `POST
//! /validate`, over TLS. For a Pod, and for the pod templates of
//! Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs, CronJobs and
//! ReplicationControllers, every container, init container and ephemeral
//! container image must carry a digest that a promotion entry into the
//! environment names; otherwise the review is denied with every reason
//! (image, container, why) in its status message. An object of another
//! kind with a pod template at `spec.template.spec` or
//! `spec.jobTemplate.spec.template.spec` (a custom resource that runs pods)
//! is checked the same way; one without names no pod and is allowed.
//!
//! Decisions come from a [`Decider`]: the promotions of a ledger verified
//! when the webhook started and re-verified as it is brought up to date
//! (see `provledger admit`); while the ledger cannot be read or verified,
//! every review is denied, saying so. Nothing is written and nothing else
//! is asked per request, so a decision takes microseconds and a `dryRun`
//! request is answered as any other (the webhook has no side effects).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::core::image_ref::ImageRef;
use crate::promoted::Promotions;

/// Largest AdmissionReview read (the API server sends at most about 3 MiB).
pub const MAX_REVIEW: usize = 4 << 20;

/// What the webhook decides with.
pub struct Policy {
    pub env: String,
    /// Namespaces whose reviews are allowed without a check.
    pub exempt_namespaces: Vec<String>,
    /// Allow everything; what would be denied is said in `warnings`.
    pub warn_only: bool,
}

/// The ledger's promotions as last verified, or why there are none.
pub struct Decider {
    pub policy: Policy,
    view: RwLock<Result<Arc<Promotions>, String>>,
}

impl Decider {
    pub fn new(policy: Policy) -> Decider {
        Decider { policy, view: RwLock::new(Err("the ledger has not been read yet".into())) }
    }

    /// Decides from `promotions` from now on (they hold for a verified
    /// ledger of `promotions.size()` entries).
    pub fn set(&self, promotions: Arc<Promotions>) {
        *self.view.write().unwrap_or_else(|e| e.into_inner()) = Ok(promotions);
    }

    /// Denies everything from now on, saying `why`.
    pub fn fail(&self, why: String) {
        *self.view.write().unwrap_or_else(|e| e.into_inner()) = Err(why);
    }

    /// The promotions in force, or why there are none.
    pub fn view(&self) -> Result<Arc<Promotions>, String> {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The AdmissionReview answering `body`.
    pub fn review(&self, body: &[u8]) -> Value {
        let request: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return self.answer("", Decision::deny(vec![format!("the body is not JSON: {e}")])),
        };
        let uid = request["request"]["uid"].as_str().unwrap_or("").to_string();
        let decision = match parse(&request) {
            Err(why) => Decision::deny(vec![format!("malformed AdmissionReview: {why}")]),
            Ok(r) => self.decide(&r),
        };
        self.answer(&uid, decision)
    }

    /// A denial of a request that could not be read at all.
    pub fn refuse(&self, why: &str) -> Value {
        self.answer("", Decision::deny(vec![why.to_string()]))
    }

    fn decide(&self, r: &Request<'_>) -> Decision {
        if r.namespace.is_some_and(|ns| self.policy.exempt_namespaces.iter().any(|e| e == ns)) {
            return Decision::allow();
        }
        let Some(object) = r.object else {
            // DELETE and CONNECT carry no new object: nothing will run.
            return Decision::allow();
        };
        let images = match pod_images(r.kind, object) {
            Ok(Some(images)) => images,
            Ok(None) => return Decision::allow(),
            Err(why) => return Decision::deny(vec![why]),
        };
        let promotions = match self.view() {
            Ok(p) => p,
            Err(why) => {
                return Decision::deny(vec![format!("cannot decide: the ledger could not be read or verified: {why}")]);
            }
        };
        let env = &self.policy.env;
        let mut reasons = Vec::new();
        for c in &images {
            let why = match c.image.parse::<ImageRef>() {
                Err(e) => format!("not an image reference: {e}"),
                Ok(image) => match image.digest() {
                    None => format!("not pinned to a digest, so it cannot be shown promoted into {env}"),
                    Some(d) => match promotions.promoted(&d, env) {
                        Ok(_) => continue,
                        Err(why) => why.to_string(),
                    },
                },
            };
            reasons.push(format!("{} {:?} image {:?}: {why}", c.list, c.name, c.image));
        }
        Decision { allowed: reasons.is_empty(), reasons, images: true }
    }

    fn answer(&self, uid: &str, d: Decision) -> Value {
        let mut response = json!({"uid": uid, "allowed": d.allowed || self.policy.warn_only});
        if !d.reasons.is_empty() {
            if self.policy.warn_only {
                response["warnings"] = json!(d.reasons.iter().map(|r| format!("provledger: {r}")).collect::<Vec<_>>());
            } else {
                response["status"] = json!({
                    "status": "Failure",
                    "code": 403,
                    "reason": "Forbidden",
                    "message": if d.images {
                        format!(
                            "provledger: {} image(s) not promoted into {}: {}",
                            d.reasons.len(),
                            self.policy.env,
                            d.reasons.join("; ")
                        )
                    } else {
                        format!("provledger: {}", d.reasons.join("; "))
                    },
                });
            }
        }
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
    }
}

struct Decision {
    allowed: bool,
    reasons: Vec<String>,
    /// The reasons are images'; else the review as a whole is refused.
    images: bool,
}

impl Decision {
    fn allow() -> Decision {
        Decision { allowed: true, reasons: Vec::new(), images: false }
    }

    fn deny(reasons: Vec<String>) -> Decision {
        Decision { allowed: false, reasons, images: false }
    }
}

/// The parts of an AdmissionReview request the decision reads.
struct Request<'a> {
    kind: &'a str,
    namespace: Option<&'a str>,
    /// `None` for an operation without a new object (DELETE, CONNECT).
    object: Option<&'a Value>,
}

fn parse(review: &Value) -> Result<Request<'_>, String> {
    if review["apiVersion"] != "admission.k8s.io/v1" || review["kind"] != "AdmissionReview" {
        return Err(format!(
            "expected apiVersion admission.k8s.io/v1 and kind AdmissionReview, got {} and {}",
            review["apiVersion"], review["kind"]
        ));
    }
    let request = review.get("request").filter(|r| r.is_object()).ok_or("no request")?;
    match request.get("uid").and_then(Value::as_str) {
        Some(uid) if !uid.is_empty() => {}
        _ => return Err("the request has no uid".into()),
    }
    let kind = request["kind"]["kind"].as_str().ok_or("the request has no kind.kind")?;
    let operation = request["operation"].as_str().ok_or("the request has no operation")?;
    let object = match (operation, request.get("object")) {
        ("DELETE" | "CONNECT", _) => None,
        (_, Some(o)) if o.is_object() => Some(o),
        (op, _) => return Err(format!("a {op} request without an object")),
    };
    Ok(Request { kind, namespace: request["namespace"].as_str(), object })
}

/// One container of a pod spec.
struct Container {
    /// `containers`, `initContainers` or `ephemeralContainers`.
    list: &'static str,
    name: String,
    image: String,
}

/// The containers of the pod an object of `kind` runs, or `None` for a
/// kind that runs no pod.
fn pod_images(kind: &str, object: &Value) -> Result<Option<Vec<Container>>, String> {
    let spec = match kind {
        "Pod" => &object["spec"],
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" | "ReplicationController" => {
            &object["spec"]["template"]["spec"]
        }
        "CronJob" => &object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        // Another kind (a custom resource that runs pods, such as a
        // rollout) is checked where pod templates usually are; one with no
        // pod template there runs no pod of its own.
        _ => {
            let template =
                [&object["spec"]["template"]["spec"], &object["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
                    .into_iter()
                    .find(|s| s.get("containers").is_some() || s.get("initContainers").is_some());
            match template {
                Some(spec) => spec,
                None => return Ok(None),
            }
        }
    };
    if !spec.is_object() {
        return Err(format!("the {kind} has no pod spec"));
    }
    let mut out = Vec::new();
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(items) = spec.get(list).filter(|v| !v.is_null()) else { continue };
        let items = items.as_array().ok_or_else(|| format!("{list} is not a list"))?;
        for (i, c) in items.iter().enumerate() {
            let name = c["name"].as_str().map_or_else(|| format!("#{i}"), str::to_string);
            let image = c["image"].as_str().ok_or_else(|| format!("{list} {name:?} names no image"))?;
            out.push(Container { list, name, image: image.to_string() });
        }
    }
    if out.is_empty() {
        return Err(format!("the {kind}'s pod spec names no container"));
    }
    // Image volumes (`volumes[].image.reference`) are pulled and mounted
    // like container images, and held to the same rule.
    if let Some(volumes) = spec.get("volumes").filter(|v| !v.is_null()) {
        let volumes = volumes.as_array().ok_or("volumes is not a list")?;
        for (i, v) in volumes.iter().enumerate() {
            let Some(image) = v.get("image").filter(|i| !i.is_null()) else { continue };
            let name = v["name"].as_str().map_or_else(|| format!("#{i}"), str::to_string);
            let reference =
                image["reference"].as_str().ok_or_else(|| format!("image volume {name:?} names no reference"))?;
            out.push(Container { list: "volumes", name, image: reference.to_string() });
        }
    }
    Ok(Some(out))
}

/// The TLS configuration of `cert` (a PEM chain) and `key` (a PEM private
/// key), HTTP/1.1 only, on the package's one crypto provider.
pub fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect())
        .map_err(|e| format!("{}: not a PEM certificate chain: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", cert.display()));
    }
    // The key's error never quotes the file.
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("{}: not a PEM private key ({})", key.display(), pem_error_kind(&e)))?;
    let mut config = rustls::ServerConfig::builder_with_provider(super::tls_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(|e| format!("{} and {}: {e}", cert.display(), key.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn pem_error_kind(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error;
    match e {
        Error::NoItemsFound => "no private key in it",
        Error::Io(_) => "cannot read it",
        _ => "malformed",
    }
}

/// Longest a request may take, its body included (the API server's own
/// timeout for a webhook is at most 30 s, 10 s by default).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

fn router(decider: Arc<Decider>) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/healthz", get(healthz))
        // The body is bounded in the handler, so that a review too large is
        // still answered with a review.
        .layer(DefaultBodyLimit::disable())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .with_state(decider)
}

async fn validate(State(d): State<Arc<Decider>>, body: axum::body::Body) -> Response {
    let answer = match axum::body::to_bytes(body, MAX_REVIEW).await {
        Ok(bytes) => d.review(&bytes),
        Err(e) => d.refuse(&format!("the request could not be read (at most {MAX_REVIEW} bytes): {e}")),
    };
    (StatusCode::OK, axum::Json(answer)).into_response()
}

/// 200 while decisions come from a verified ledger, else 503 and why.
async fn healthz(State(d): State<Arc<Decider>>) -> Response {
    match d.view() {
        Ok(p) => (StatusCode::OK, format!("ok: {} entries verified\n", p.size())).into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

/// Serves `decider` on `listener` over TLS until SIGINT or SIGTERM.
pub fn serve(
    decider: Arc<Decider>,
    listener: std::net::TcpListener,
    tls: rustls::ServerConfig,
    limits: &super::server::Config,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        super::server::accept_loop(listener, router(decider), limits, Some(acceptor)).await
    })
}

/// Where `admit` listens, for messages.
pub fn describe(addr: SocketAddr) -> String {
    format!("https://{addr}/validate")
}

/// How often the ledger is brought up to date, by default.
pub const REFRESH: Duration = Duration::from_secs(5);
