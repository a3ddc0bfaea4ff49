//! The ledger server under load, over loopback, against a real `provledger
//! serve` process on the example keys.
//!
//! Criterion measures the time per durable, acknowledged (and
//! client-verified) submission with 1, 8 and 64 concurrent clients, and a
//! one-by-one durable append through the library on the same machine.
//! After it, a load table prints, from one run: appends/s and p50/p99 submit
//! latency for 1, 8 and 64 clients; the one-by-one and batched library
//! append rates; the raw fsync rate of the disk; and the good clients'
//! throughput and p99 while as many other clients flood the server with
//! statements signed by an unknown key. Then the same 64 clients against
//! 1, 2 and 3 servers on one PostgreSQL started here, 2 servers on a
//! primary with a synchronous standby, and a failover under load.
//!
//! `cargo bench --bench server` (the table alone: `-- --table-only`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::server::Served;
use common::{Env, build_envelope_by};
use criterion::{BenchmarkId, Criterion, Throughput};
use provledger::core::dsse::Envelope;
use provledger::core::note::NoteVerifier;
use provledger::remote::Client;

const TIME: u64 = 1_800_000_000;
static SEED: AtomicU64 = AtomicU64::new(0);

/// `n` distinct build statements signed by `signer`.
fn envelopes(env: &Env, signer: &str, n: usize) -> Vec<Envelope> {
    (0..n)
        .map(|_| {
            build_envelope_by(env.dir.path(), signer, &format!("bench-{}", SEED.fetch_add(1, Ordering::Relaxed)), TIME)
        })
        .collect()
}

fn log_verifier(env: &Env) -> NoteVerifier {
    NoteVerifier::parse(env.json(&["checkpoint"])["verifier_key"].as_str().unwrap()).unwrap()
}

/// Submits `work` split over `clients` threads; returns the wall time and
/// every submission's latency.
fn submit_all(url: &str, log: &NoteVerifier, work: Vec<Envelope>, clients: usize) -> (Duration, Vec<Duration>) {
    submit_spread(&[url], log, work, clients)
}

/// [`submit_all`] with client `c` on server `urls[c % urls.len()]`.
fn submit_spread(urls: &[&str], log: &NoteVerifier, work: Vec<Envelope>, clients: usize) -> (Duration, Vec<Duration>) {
    let mut shares: Vec<Vec<Envelope>> = (0..clients).map(|_| Vec::new()).collect();
    for (i, e) in work.into_iter().enumerate() {
        shares[i % clients].push(e);
    }
    let start = Instant::now();
    let threads: Vec<_> = shares
        .into_iter()
        .enumerate()
        .map(|(c, share)| {
            let (url, log) = (urls[c % urls.len()].to_string(), log.clone());
            std::thread::spawn(move || {
                let client = Client::new(&url, Duration::from_secs(60)).unwrap();
                share
                    .iter()
                    .map(|e| {
                        let t = Instant::now();
                        client.append(e, &log).unwrap();
                        t.elapsed()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let latencies = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    (start.elapsed(), latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn criterion_benches(c: &mut Criterion, env: &Env, url: &str, log: &NoteVerifier) {
    let mut g = c.benchmark_group("server");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    for clients in [1usize, 8, 64] {
        g.bench_with_input(BenchmarkId::new("submit", clients), &clients, |b, &clients| {
            b.iter_custom(|iters| {
                let work = envelopes(env, "ci", (iters as usize).max(clients));
                let (elapsed, _) = submit_all(url, log, work, clients);
                elapsed.mul_f64(iters as f64 / (iters as f64).max(clients as f64))
            })
        });
    }
    g.finish();
}

fn local_append_bench(c: &mut Criterion) {
    let (env, _) = Env::initialised_with_log_key();
    let ledger = env.writer();
    let mut g = c.benchmark_group("server");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.bench_function("append_one_by_one_library", |b| {
        b.iter_custom(|iters| {
            let work = envelopes(&env, "ci", iters as usize);
            let t = Instant::now();
            for e in work {
                ledger.append(e, TIME).unwrap();
            }
            t.elapsed()
        })
    });
    g.finish();
}

/// Raw fsync rate of the disk the temp dir is on: 4 KiB write + fsync.
fn fsync_rate() -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut f = std::fs::File::create(dir.path().join("probe")).unwrap();
    let block = [0u8; 4096];
    let (mut n, start) = (0u32, Instant::now());
    while start.elapsed() < Duration::from_secs(2) {
        f.write_all(&block).unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Prints one load-table row; returns the rate.
fn row(label: &str, n: usize, elapsed: Duration, mut lat: Vec<Duration>, base: f64) -> f64 {
    lat.sort();
    let rate = n as f64 / elapsed.as_secs_f64();
    println!(
        "| {label} | {n} | {rate:.0} | {:.2}x | {:.2} ms | {:.2} ms |",
        rate / base,
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3
    );
    rate
}

/// Returns the embedded server's rate with 64 clients.
fn table() -> f64 {
    println!("\n# server load table (one run)\n");
    println!("raw fsync (4 KiB write + fdatasync): {:.0}/s", fsync_rate());
    let (local, _) = Env::initialised_with_log_key();
    let ledger = local.writer();
    let work = envelopes(&local, "ci", 300);
    let t = Instant::now();
    for e in work {
        ledger.append(e, TIME).unwrap();
    }
    let one_by_one = 300.0 / t.elapsed().as_secs_f64();
    println!("library append, one by one, durable: {one_by_one:.0}/s");
    let work = envelopes(&local, "ci", 10_000);
    let t = Instant::now();
    for chunk in work.chunks(1000) {
        ledger.append_batch(chunk.to_vec(), TIME).unwrap();
    }
    println!("library append_batch of 1000, durable: {:.0}/s", 10_000.0 / t.elapsed().as_secs_f64());
    drop(ledger);

    let (env, _) = Env::initialised_with_log_key();
    let log = log_verifier(&env);
    let served = Served::start(&env.ledger(), &[]);
    println!("\n| clients | submissions | appends/s | vs one-by-one | p50 | p99 |");
    println!("|---|---|---|---|---|---|");
    let mut embedded = 0.0;
    for (clients, n) in [(1usize, 500usize), (8, 2000), (64, 4000)] {
        let work = envelopes(&env, "ci", n);
        let (elapsed, lat) = submit_all(&served.url, &log, work, clients);
        embedded = row(&clients.to_string(), n, elapsed, lat, one_by_one);
    }
    // The same 8 good clients while 8 others flood it with statements by a
    // key the policy does not know (refused 403 in the handler).
    let stranger = provledger::core::keys::SecretKey::generate();
    provledger::keyfile::write_new_key(&env.dir.path().join("stranger.key"), &stranger).unwrap();
    let bad = Arc::new(envelopes(&env, "stranger", 64));
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let flooders: Vec<_> = (0..8)
        .map(|i| {
            let (url, bad, stop, refused) = (served.url.clone(), bad.clone(), stop.clone(), refused.clone());
            std::thread::spawn(move || {
                let client = Client::new(&url, Duration::from_secs(60)).unwrap();
                let mut k = i;
                while !stop.load(Ordering::Relaxed) {
                    assert!(client.submit(&bad[k % bad.len()]).is_err());
                    refused.fetch_add(1, Ordering::Relaxed);
                    k += 1;
                }
            })
        })
        .collect();
    let work = envelopes(&env, "ci", 2000);
    let (elapsed, mut lat) = submit_all(&served.url, &log, work, 8);
    stop.store(true, Ordering::Relaxed);
    flooders.into_iter().for_each(|t| t.join().unwrap());
    lat.sort();
    println!(
        "| 8 + 8 flooding | 2000 | {:.0} | - | {:.2} ms | {:.2} ms |",
        2000.0 / elapsed.as_secs_f64(),
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "flood: {} bad submissions refused ({:.0}/s) while the good ones ran",
        refused.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
    );
    served.stop();
    env.ok(&["verify"]);
    embedded
}

/// 64 clients against 1, 2 and 3 servers on one PostgreSQL (fsync and
/// synchronous commit on, as shipped), then 2 servers on a primary with a
/// synchronous standby, steady and through a failover, each beside the
/// embedded server's rate from the same run.
fn postgres_table(embedded: f64) {
    use common::pg::{Cluster, SyncPair, failover_under_load};
    println!("\n# servers on PostgreSQL, 64 clients (vs the embedded server's {embedded:.0}/s above)\n");
    println!("| servers | submissions | appends/s | vs embedded | p50 | p99 |");
    println!("|---|---|---|---|---|---|");
    // PROVLEDGER_BENCH_PG_STATEMENTS=1: after each row, the statements the
    // servers ran (pg_stat_statements), by total time.
    let statements = std::env::var_os("PROVLEDGER_BENCH_PG_STATEMENTS").is_some();
    let cluster = if statements {
        Cluster::start_with(&["shared_preload_libraries = 'pg_stat_statements'"])
    } else {
        Cluster::start()
    };
    for servers in 1..=3 {
        let url = cluster.create_db(&format!("bench{servers}"));
        let env = Env::new();
        env.init(&["--store", &url, "--log-key", &env.key("ledger")]);
        let log = log_verifier_of(&env, &url);
        let served: Vec<Served> = (0..servers).map(|_| Served::start(&env.ledger(), &["--store", &url])).collect();
        let urls: Vec<&str> = served.iter().map(|s| s.url.as_str()).collect();
        let warm = envelopes(&env, "ci", 256);
        submit_spread(&urls, &log, warm, 64);
        if statements {
            cluster.sql(&format!("bench{servers}"), "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
            cluster.sql(&format!("bench{servers}"), "SELECT pg_stat_statements_reset()");
        }
        let (elapsed, lat) = submit_spread(&urls, &log, envelopes(&env, "ci", 4000), 64);
        row(&servers.to_string(), 4000, elapsed, lat, embedded);
        if statements {
            println!(
                "{}",
                cluster.sql(
                    &format!("bench{servers}"),
                    "SELECT calls, round(total_exec_time::numeric, 1), left(regexp_replace(query, '\\s+', ' ', 'g'), 90) \
                     FROM pg_stat_statements ORDER BY calls DESC LIMIT 15"
                )
            );
        }
        env.ok(&["--store", &url, "verify"]);
    }
    drop(cluster);

    let mut pair = SyncPair::start("ha");
    let env = Env::new();
    env.init(&["--store", &pair.url, "--log-key", &env.key("ledger")]);
    let log = log_verifier_of(&env, &pair.url);
    let served =
        [Served::start(&env.ledger(), &["--store", &pair.url]), Served::start(&env.ledger(), &["--store", &pair.url])];
    let urls = [served[0].url.as_str(), served[1].url.as_str()];
    let (elapsed, lat) = submit_spread(&urls, &log, envelopes(&env, "ci", 4000), 64);
    row("2, synchronous standby", 4000, elapsed, lat, embedded);
    let run = failover_under_load(&env, &mut pair, &urls, 64, 20);
    let lost = run.lost_or_doubled().len();
    println!(
        "\nfailover (2 servers, 64 clients, primary SIGKILLed after a third of {} statements, standby promoted): \
         first acknowledgement {:.2} s after the kill; {} acknowledged, {lost} lost or doubled; {} resubmissions",
        64 * 20,
        run.first_ack_after_kill.as_secs_f64(),
        run.acked.len(),
        run.resubmitted
    );
    assert_eq!(lost, 0, "acknowledged entries lost in the failover");
    env.ok(&["--store", &pair.url, "verify"]);
}

fn log_verifier_of(env: &Env, url: &str) -> NoteVerifier {
    NoteVerifier::parse(env.json(&["--store", url, "checkpoint"])["verifier_key"].as_str().unwrap()).unwrap()
}

fn main() {
    let table_only = std::env::args().any(|a| a == "--table-only");
    if !table_only {
        let mut c = Criterion::default().configure_from_args();
        local_append_bench(&mut c);
        let (env, _) = Env::initialised_with_log_key();
        let log = log_verifier(&env);
        let served = Served::start(&env.ledger(), &[]);
        criterion_benches(&mut c, &env, &served.url, &log);
        drop(served);
        c.final_summary();
    }
    let embedded = table();
    postgres_table(embedded);
}
