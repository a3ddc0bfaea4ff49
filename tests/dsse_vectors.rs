//! The DSSE protocol vectors (secure-systems-lab/dsse), every accept and
//! reject case, against our PAE and envelope verification.

use provledger::core::dsse::{Envelope, pae};
use provledger::core::keys::{PublicKey, SecretKey};
use serde_json::Value;

fn vectors() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/dsse/vectors.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn every_dsse_vector() {
    let v = vectors();
    let keys = v["keys"].as_object().unwrap();
    let mut seen = 0;
    for case in v["vectors"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let envelope = Envelope::from_json_value(case["envelope"].clone())
            .unwrap_or_else(|e| panic!("{id}: envelope does not parse: {e}"));
        // PAE: the vector's bytes are of the signed payload type, which for
        // the swapped-type case is not the envelope's.
        if id != "payload-type-swapped" {
            assert_eq!(hex::encode(envelope.pae()), case["pae"].as_str().unwrap(), "{id}: PAE");
        } else {
            assert_eq!(
                hex::encode(pae("application/vnd.in-toto+json", &envelope.payload)),
                case["pae"].as_str().unwrap()
            );
        }
        let trusted: Vec<(Option<&str>, PublicKey)> = case["trustedKeys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                let name = k.as_str().unwrap();
                let key = &keys[name];
                let public = PublicKey::from_hex(key["public"].as_str().unwrap()).unwrap();
                // The seed is given too: check it derives the same key.
                let seed: [u8; 32] = hex::decode(key["seed"].as_str().unwrap()).unwrap().try_into().unwrap();
                assert_eq!(SecretKey::from_seed(&seed).public(), public);
                (Some(name), public)
            })
            .collect();
        let supported: Vec<&str> =
            case["supportedPayloadTypes"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        let threshold = case["threshold"].as_u64().unwrap() as usize;
        let got = envelope.verify_threshold(&trusted, threshold, &supported);
        match case["expect"].as_str().unwrap() {
            "accept" => assert!(got.is_ok(), "{id}: expected accept, got {got:?}"),
            "reject" => assert!(got.is_err(), "{id}: expected reject, got {got:?}"),
            other => panic!("{id}: unknown expectation {other}"),
        }
        seen += 1;
    }
    assert_eq!(seen, 9, "all nine vectors ran");
}

#[test]
fn our_signatures_are_rfc8032_signatures_over_pae() {
    // Key A signs the same payload as the single-signature vector: ed25519
    // is deterministic, so our envelope must carry the vector's signature.
    let v = vectors();
    let case = &v["vectors"][0];
    let seed: [u8; 32] = hex::decode(v["keys"]["A"]["seed"].as_str().unwrap()).unwrap().try_into().unwrap();
    let expected = Envelope::from_json_value(case["envelope"].clone()).unwrap();
    let ours = Envelope::sign(&expected.payload_type, expected.payload.clone(), &[&SecretKey::from_seed(&seed)]);
    assert_eq!(ours.signatures[0].sig, expected.signatures[0].sig);
}
