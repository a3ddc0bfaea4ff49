//! Envelopes from `log --json` verified by securesystemslib (Python), an
//! implementation we did not write. The test command creates the venv; this
//! test fails, rather than skips, when it is missing.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Env, KEYS, image, python};

#[test]
fn securesystemslib_verifies_our_envelopes_and_rejects_tampered_ones() {
    let (env, _) = Env::initialised();
    let img = image("interop");
    env.build(&img);
    env.validate(&img, &["unit=pass", "e2e=fail"]);
    let log = env.ok(&["log", "--json"]);
    std::fs::write(env.path("log.json"), &log).unwrap();
    let mut keys = serde_json::Map::new();
    for k in KEYS {
        let text = std::fs::read_to_string(env.path(&format!("{k}.key.pub"))).unwrap();
        let public: provledger::core::keys::PublicKey = text.parse().unwrap();
        keys.insert(public.id().to_string(), public.to_hex().into());
    }
    std::fs::write(env.path("keys.json"), serde_json::Value::Object(keys).to_string()).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/verify_dsse.py");
    let out = Command::new(python()).arg(script).arg(env.path("log.json")).arg(env.path("keys.json")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "securesystemslib: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // 3 genuine envelopes verified and 3 tampered ones rejected.
    assert!(stdout.contains("6 passed, 0 failed"), "{stdout}");
}
