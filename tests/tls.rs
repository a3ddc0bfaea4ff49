//! Both HTTPS clients speak TLS with the one crypto provider the package
//! builds (ring): reqwest, under oci-client, has no provider of its own and
//! panics when none is installed, so building a registry client must
//! install it first. Nothing here needs the network: a loopback listener
//! reads what each client sends and answers with bytes that are not TLS.
//!
//! This file is its own test binary, with one test: nothing installs a
//! provider before the package does.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use provledger::core::image_ref::ImageRef;
use provledger::registry::{Options, Registry, RegistryError, Target};
use provledger::remote::{Client, RemoteError};

/// A listener on 127.0.0.1 that, for every connection, reports its first
/// bytes and answers in plain HTTP, which no TLS client accepts.
fn not_tls() -> (u16, mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut first = [0u8; 3];
            let n = s.read(&mut first).unwrap_or(0);
            let _ = tx.send(first[..n].to_vec());
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        }
    });
    (port, rx)
}

/// A TLS record of type handshake (a ClientHello), TLS 1.0-1.2 framing.
fn is_tls_handshake(first: &[u8]) -> bool {
    first.len() == 3 && first[0] == 0x16 && first[1] == 0x03
}

/// One test, so that nothing else in this process installs a provider
/// first: the registry client is built before anything else.
#[test]
fn both_https_clients_speak_tls_with_the_one_provider_and_report_failures_as_unreachable() {
    // The registry client (oci-client, reqwest): building it must not panic.
    // Not `Options::new`: PROVLEDGER_INSECURE_REGISTRIES must not make it HTTP.
    let options = Options { insecure: Vec::new(), timeout: Duration::from_secs(10) };
    let registry = Registry::new(&options).expect("a registry client");
    let (port, seen) = not_tls();
    let image: ImageRef = format!("127.0.0.1:{port}/acme/app:1.0").parse().unwrap();
    let e = registry.manifest(&image, Target::Tag("1.0")).expect_err("no TLS server there");
    assert!(matches!(e, RegistryError::Unreachable { .. }), "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    let first = seen.recv_timeout(Duration::from_secs(10)).expect("the registry client connected");
    assert!(is_tls_handshake(&first), "the registry client opened with {first:?}, not a TLS ClientHello");

    // The ledger server client (ureq).
    let (port, seen) = not_tls();
    let client = Client::new(&format!("https://127.0.0.1:{port}"), Duration::from_secs(10)).expect("a server client");
    let e = client.info().expect_err("no TLS server there");
    assert!(matches!(e, RemoteError::Unreachable { .. }), "{e}");
    let first = seen.recv_timeout(Duration::from_secs(10)).expect("the server client connected");
    assert!(is_tls_handshake(&first), "the server client opened with {first:?}, not a TLS ClientHello");

    // A closed HTTPS port: unreachable, for both.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let image: ImageRef = format!("127.0.0.1:{port}/acme/app:1.0").parse().unwrap();
    let e = registry.manifest(&image, Target::Tag("1.0")).unwrap_err();
    assert!(matches!(e, RegistryError::Unreachable { .. }), "{e}");
    let e = Client::new(&format!("https://127.0.0.1:{port}"), Duration::from_secs(10)).unwrap().info().unwrap_err();
    assert!(matches!(e, RemoteError::Unreachable { .. }), "{e}");
}
