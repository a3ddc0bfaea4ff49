//! The admission webhook's decision time and its requests/s over loopback
//! TLS, against a verified ledger.
//!
//! `PROVLEDGER_BENCH_LEDGER=DIR cargo bench --bench admit` decides from the
//! ledger in DIR (for 1M entries: `cargo run --release --example scale --
//! --entries 1000000 --dir D` leaves it in `D/ledger`); without it, from a
//! small ledger made here.
//! Printed after criterion, from one run:
//! - the start-up cost: verifying the whole ledger into its promotions;
//! - decision time p50/p99 for a 10-container pod whose images are all
//!   promoted (every one looked up) and for one with all 10 refused, beside
//!   the floor of parsing the same AdmissionReview as JSON;
//! - requests/s of the running webhook over loopback TLS with 8 clients
//!   (kept-alive connections), beside `GET /healthz` on the same server.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use provledger::core::digest::Digest;
use provledger::net::admit::{Decider, Policy};
use provledger::promoted::Promotions;
use provledger::store::Store as _;
use serde_json::{Value, json};

fn review(images: &[String]) -> Vec<u8> {
    let containers: Vec<Value> =
        images.iter().enumerate().map(|(i, image)| json!({"name": format!("c{i}"), "image": image})).collect();
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0b8f5c9e-2f6c-4c3e-9d5a-3f1e2d4c5b6a",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:ci:deployer"},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": {"containers": containers}},
            "dryRun": false
        }
    })
    .to_string()
    .into_bytes()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn timed(n: usize, mut f: impl FnMut()) -> Vec<Duration> {
    let mut out: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    out.sort();
    out
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// The ledger to decide from: `PROVLEDGER_BENCH_LEDGER`, else a small one.
fn ledger_dir() -> (std::path::PathBuf, Option<common::Env>) {
    if let Some(dir) = std::env::var_os("PROVLEDGER_BENCH_LEDGER") {
        return (dir.into(), None);
    }
    let (env, _) = common::Env::initialised();
    for i in 0..12 {
        env.release_to_prod(&common::image(&format!("bench-{i}")));
    }
    (env.ledger(), Some(env))
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (dir, _keep) = ledger_dir();
    let ledger = provledger::ledger::dir::LedgerDir::new(&dir, Duration::from_secs(10)).open().unwrap();
    let t = Instant::now();
    let mut promotions = Promotions::new();
    let report = ledger.verify(None, |v| promotions.record(v)).unwrap();
    let verify_time = t.elapsed();
    let env = ["prod", "staging", "dev"]
        .into_iter()
        .find(|e| ledger.store().promotions_into(e).unwrap().len() >= 10)
        .expect("a ledger with 10 promotions into one environment");
    let into_env = ledger.store().promotions_into(env).unwrap().len();
    let promoted: Vec<String> = ledger
        .store()
        .promotions_into(env)
        .unwrap()
        .into_iter()
        .rev()
        .take(10)
        .map(|i| {
            let e = ledger.read(i).unwrap();
            let subject = &e.statement.subjects[0];
            format!("{}@sha256:{}", subject.name, subject.digest["sha256"])
        })
        .collect();
    drop(ledger);
    let refused: Vec<String> = (0..10)
        .map(|i| {
            let d: Digest = common::digest(&format!("never-{i}")).parse().unwrap();
            format!("registry.example.com/acme/app@{d}")
        })
        .collect();
    let decider =
        Arc::new(Decider::new(Policy { env: env.to_string(), exempt_namespaces: Vec::new(), warn_only: false }));
    decider.set(Arc::new(promotions));
    let (allowed, denied) = (review(&promoted), review(&refused));
    assert_eq!(decider.review(&allowed)["response"]["allowed"], true);
    assert_eq!(decider.review(&denied)["response"]["allowed"], false);

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("admit");
    g.bench_function("decide_10_promoted", |b| b.iter(|| decider.review(&allowed)));
    g.bench_function("decide_10_refused", |b| b.iter(|| decider.review(&denied)));
    g.bench_function("parse_only", |b| b.iter(|| serde_json::from_slice::<Value>(&allowed).unwrap()));
    g.finish();
    c.final_summary();

    println!("\n# admission webhook (one run)\n");
    println!(
        "ledger: {} entries, verified into its promotions in {:.2} s at start ({env}: {} promotions)",
        report.entries,
        verify_time.as_secs_f64(),
        into_env
    );
    let n = 20_000;
    let a = timed(n, || {
        decider.review(&allowed);
    });
    let d = timed(n, || {
        decider.review(&denied);
    });
    let p = timed(n, || {
        serde_json::from_slice::<Value>(&allowed).unwrap();
    });
    println!("\n| decision, 10-container pod | p50 | p99 |");
    println!("|---|---|---|");
    println!("| all 10 promoted (admitted) | {} | {} |", us(percentile(&a, 0.5)), us(percentile(&a, 0.99)));
    println!("| all 10 refused (denied) | {} | {} |", us(percentile(&d, 0.5)), us(percentile(&d, 0.99)));
    println!("| floor: parse the review as JSON | {} | {} |", us(percentile(&p, 0.5)), us(percentile(&p, 0.99)));

    // The webhook itself, over loopback TLS.
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = (tmp.path().join("tls.crt"), tmp.path().join("tls.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let tls = provledger::net::admit::tls_config(&cert, &key).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    {
        let decider = decider.clone();
        std::thread::spawn(move || {
            provledger::net::admit::serve(decider, listener, tls, &provledger::server::Config::default())
        });
    }
    let der = made.cert.der().to_vec();
    let rate = |path: &str, body: Option<&[u8]>| -> (f64, Duration) {
        let clients = 8;
        let per = 1500;
        let start = Instant::now();
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                let (der, body, url) = (der.clone(), body.map(<[u8]>::to_vec), format!("https://{addr}{path}"));
                std::thread::spawn(move || {
                    let roots = ureq::tls::RootCerts::Specific(Arc::new(vec![
                        ureq::tls::Certificate::from_der(&der).to_owned(),
                    ]));
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
                        .build()
                        .into();
                    (0..per)
                        .map(|_| {
                            let t = Instant::now();
                            let mut r = match &body {
                                Some(b) => agent.post(&url).header("Content-Type", "application/json").send(&b[..]),
                                None => agent.get(&url).call(),
                            }
                            .unwrap();
                            r.body_mut().read_to_vec().unwrap();
                            t.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut lat: Vec<Duration> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        let elapsed = start.elapsed();
        lat.sort();
        ((clients * per) as f64 / elapsed.as_secs_f64(), percentile(&lat, 0.99))
    };
    let (reviews, review_p99) = rate("/validate", Some(&allowed));
    let (health, health_p99) = rate("/healthz", None);
    println!("\n| over loopback TLS, 8 clients | requests/s | p99 |");
    println!("|---|---|---|");
    println!("| POST /validate, 10-container pod admitted | {reviews:.0} | {} |", us(review_p99));
    println!("| ceiling: GET /healthz on the same server | {health:.0} | {} |", us(health_p99));
}
