//! C2SP signed notes and checkpoints against the vectors of Go's
//! golang.org/x/mod/sumdb/note tests (an implementation we did not write):
//! the same key gives byte-identical signed notes, and Go's signatures verify.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use provledger::core::keys::SecretKey;
use provledger::core::note::{Checkpoint, NoteVerifier, open_note, sign_note};

const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str =
    "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn peter_secret() -> SecretKey {
    // Go's secret key text: PRIVATE+KEY+name+hash+base64(0x01 ‖ seed).
    let b64 = PETER_SKEY.splitn(5, '+').nth(4).unwrap();
    let raw = STANDARD.decode(b64).unwrap();
    assert_eq!(raw[0], 1);
    SecretKey::from_seed(&raw[1..].try_into().unwrap())
}

#[test]
fn signing_matches_go_byte_for_byte() {
    let key = peter_secret();
    let verifier = NoteVerifier::parse(PETER_VKEY).unwrap();
    assert_eq!(verifier.public, key.public());
    assert_eq!(NoteVerifier::new("PeterNeumann", key.public()).unwrap().to_text(), PETER_VKEY);
    let signed = sign_note(TEXT, "PeterNeumann", &key).unwrap();
    assert_eq!(signed, format!("{TEXT}\n{PETER_SIG}"));
}

#[test]
fn go_signatures_open() {
    let peter = NoteVerifier::parse(PETER_VKEY).unwrap();
    let enoch = NoteVerifier::parse(ENOCH_VKEY).unwrap();
    let msg = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    let n = open_note(&msg, std::slice::from_ref(&peter)).unwrap();
    assert_eq!(n.text, TEXT);
    assert_eq!(n.verified_by, ["PeterNeumann"]);
    let n = open_note(&msg, &[peter.clone(), enoch.clone()]).unwrap();
    assert_eq!(n.verified_by, ["PeterNeumann", "EnochRoot"]);
    // No known key: nothing is trusted.
    assert!(open_note(&msg, &[]).unwrap_err().to_string().contains("no verifiable signatures"));
    // A mangled signature by a known key fails outright.
    let bad = format!("{TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    assert!(open_note(&bad, std::slice::from_ref(&peter)).unwrap_err().to_string().contains("invalid signature"));
    // A duplicated verifier is ambiguous.
    let e = open_note(&format!("{TEXT}\n{ENOCH_SIG}"), &[enoch.clone(), peter.clone(), enoch]).unwrap_err();
    assert!(e.to_string().contains("ambiguous key EnochRoot+af0cfe78"), "{e}");
}

#[test]
fn malformed_notes_and_keys_are_refused() {
    let peter = NoteVerifier::parse(PETER_VKEY).unwrap();
    let v = std::slice::from_ref(&peter);
    for msg in [
        TEXT.to_string(),
        format!("{TEXT}\n"),
        format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
        format!("\x01{TEXT}\n{PETER_SIG}"),
        format!(
            "{TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
        ),
        format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
        format!("{TEXT}\n{}", PETER_SIG.repeat(101)),
    ] {
        assert!(open_note(&msg, v).is_err(), "accepted: {msg:?}");
    }
    // Every truncation and every single-character change of the key is refused.
    let b = PETER_VKEY.as_bytes();
    for i in 0..b.len() {
        for j in i + 1..=b.len() {
            if (i, j) != (0, b.len()) {
                assert!(NoteVerifier::parse(std::str::from_utf8(&b[i..j]).unwrap()).is_err(), "{i}..{j}");
            }
        }
        let mut m = b.to_vec();
        m[i] = m[i].wrapping_add(1);
        if let Ok(s) = std::str::from_utf8(&m) {
            assert!(NoteVerifier::parse(s).is_err(), "changed at {i}: {s}");
        }
    }
    assert!(NoteVerifier::parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").is_err());
}

#[test]
fn checkpoints_round_trip_and_sign() {
    let key = SecretKey::from_seed(&[7; 32]);
    let cp = Checkpoint { origin: "provledger.example/ledger".into(), size: 42, root: [9; 32] };
    let text = cp.to_text();
    assert_eq!(Checkpoint::parse(&text).unwrap(), cp);
    let signed = sign_note(&text, "provledger.example/ledger", &key).unwrap();
    let v = NoteVerifier::new("provledger.example/ledger", key.public()).unwrap();
    let opened = open_note(&signed, &[v]).unwrap();
    assert_eq!(Checkpoint::parse(&opened.text).unwrap(), cp);
    for bad in
        ["", "o\n", "o\n01\nAAAA\n", "o\n-1\n", "o\n12\nAAAA\n", "\n12\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n"]
    {
        assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
    }
}
