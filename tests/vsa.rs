//! `vsa`: a SLSA Verification Summary Attestation of a promotion, checked
//! against the VSA v1 and in-toto Statement v1 field definitions
//! (`vectors/slsa-vsa-v1.schema.json`), field by field against the ledger,
//! and its signature by securesystemslib, which we did not write.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Env, digest, python};
use serde_json::Value;

fn released() -> (Env, String) {
    let (env, genesis) = Env::with_promotions();
    env.ok(&["key", "generate", "--out", &env.path("attestor.key")]);
    (env, genesis)
}

fn payload(envelope: &Value) -> Value {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(envelope["payload"].as_str().unwrap()).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn a_promoted_digest_gets_a_summary_that_matches_the_field_definitions_and_the_ledger() {
    let (env, genesis) = released();
    let out = env.path("app.vsa.json");
    let written =
        env.json(&["vsa", &digest("app"), "--env", "prod", "--key", &env.path("attestor.key"), "--out", &out]);
    let envelope: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    let attestor = env.ok(&["key", "id", &env.path("attestor.key.pub")]);
    assert_eq!(envelope["signatures"][0]["keyid"].as_str(), Some(attestor.trim()));
    assert_eq!(written["signed_by"].as_str(), Some(attestor.trim()));
    let statement = payload(&envelope);

    let schema: Value = serde_json::from_str(include_str!("vectors/slsa-vsa-v1.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> =
        validator.iter_errors(&statement).map(|e| format!("{e} at {}", e.instance_path)).collect();
    assert!(errors.is_empty(), "{errors:?}\n{statement:#}");
    // The schema can fail: without a REQUIRED field, or with a result it does not define.
    let mut broken = statement.clone();
    broken["predicate"].as_object_mut().unwrap().remove("verificationResult");
    assert!(!validator.is_valid(&broken));
    let mut broken = statement.clone();
    broken["predicate"]["verifiedLevels"] = serde_json::json!(["SLSA_BUILD_LEVEL_X"]);
    assert!(!validator.is_valid(&broken));

    let log = env.json(&["log"]);
    let entry_hash = |i: u64| log[i as usize]["hash"].as_str().unwrap().to_string();
    let p = &statement["predicate"];
    let hex = digest("app").strip_prefix("sha256:").unwrap().to_string();
    assert_eq!(statement["subject"][0]["digest"]["sha256"], hex);
    assert_eq!(statement["subject"][0]["name"], "registry.example.com/acme/app");
    assert_eq!(p["resourceUri"], format!("oci://registry.example.com/acme/app@sha256:{hex}"));
    assert_eq!(p["verificationResult"], "PASSED");
    let verifier = p["verifier"]["id"].as_str().unwrap();
    let log_key = env.json(&["checkpoint"])["verifier_key"].as_str().unwrap().to_string();
    let parts: Vec<&str> = log_key.splitn(3, '+').collect();
    let key_name = format!("{}+{}", parts[0], parts[1]);
    assert_eq!(verifier, format!("https://provledger.dev/ledger/{genesis}/log/{key_name}"));
    // The policy: the genesis policy entry, with prod's required checks.
    assert_eq!(p["policy"]["uri"], format!("https://provledger.dev/ledger/{genesis}/entries/0#environment=prod"));
    assert_eq!(p["policy"]["digest"]["provledgerEntry"], genesis);
    assert_eq!(
        p["policy"]["annotations"]["requiredChecks"],
        serde_json::json!(["unit", "integration", "e2e", "vuln-scan"])
    );
    // The inputs: the build, the validations the promotion counted, the promotion.
    let promotion = written["promotion"].as_u64().unwrap();
    assert_eq!(promotion, 6);
    let inputs = p["inputAttestations"].as_array().unwrap();
    let indexes: Vec<u64> =
        inputs.iter().map(|i| i["uri"].as_str().unwrap().rsplit('/').next().unwrap().parse().unwrap()).collect();
    assert_eq!(indexes, vec![1, 2, 5, 6], "the build, the two validations counted, the promotion: {inputs:?}");
    for (input, i) in inputs.iter().zip(&indexes) {
        assert_eq!(input["digest"]["provledgerEntry"].as_str().unwrap(), entry_hash(*i), "entry {i}");
        assert_eq!(input["digest"]["sha256"].as_str().unwrap().len(), 64);
    }
    let promoted = common::statement(&log, promotion as usize);
    assert_eq!(promoted["predicate"]["to"], "prod");

    // The signature, checked by securesystemslib (and a tampered payload refused).
    let public: provledger::core::keys::PublicKey =
        std::fs::read_to_string(env.path("attestor.key.pub")).unwrap().parse().unwrap();
    std::fs::write(env.path("vsa-log.json"), serde_json::json!([{"index": 0, "envelope": envelope}]).to_string())
        .unwrap();
    std::fs::write(
        env.path("vsa-keys.json"),
        serde_json::json!({ public.id().to_string(): public.to_hex() }).to_string(),
    )
    .unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/verify_dsse.py");
    let run = Command::new(python())
        .arg(script)
        .arg(env.path("vsa-log.json"))
        .arg(env.path("vsa-keys.json"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "securesystemslib: {stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("2 passed, 0 failed"), "{stdout}");
}

#[test]
fn no_summary_for_a_digest_not_promoted_into_the_environment() {
    let (env, _) = released();
    let key = env.path("attestor.key");
    let out = env.path("refused.vsa.json");
    let said = env.fails(3, &["vsa", &digest("dev-only"), "--env", "prod", "--key", &key, "--out", &out]);
    assert!(said.contains("never promoted into prod; it was promoted into dev"), "{said}");
    let said = env.fails(3, &["vsa", &digest("unknown"), "--env", "prod", "--key", &key, "--out", &out]);
    assert!(said.contains("never promoted into prod"), "{said}");
    let said = env.fails(1, &["vsa", &digest("app"), "--env", "qa-lab", "--key", &key, "--out", &out]);
    assert!(said.contains("\"qa-lab\" is not in the policy"), "{said}");
    // What the summary states must verify from the genesis hash: not from another one.
    let wrong = "ab".repeat(32);
    let said =
        env.fails(4, &["vsa", &digest("app"), "--env", "prod", "--key", &key, "--out", &out, "--genesis", &wrong]);
    assert!(said.contains("no summary written") && said.contains("genesis"), "{said}");
    assert!(!std::path::Path::new(&out).exists(), "nothing is written when refused");
    // Into dev it was promoted: the summary names dev's promotion.
    let written = env.json(&["vsa", &digest("dev-only"), "--env", "dev", "--key", &key, "--out", &out]);
    let statement = payload(&serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap());
    assert!(statement["predicate"]["policy"]["uri"].as_str().unwrap().ends_with("#environment=dev"));
    assert_eq!(written["environment"], "dev");
}
