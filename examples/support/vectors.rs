//! Builds the format test vectors of `ledger-format/vectors/`. Shared by the
//! generator (`cargo run --example gen_vectors`) and by the test that checks
//! the committed files are exactly what this code produces.

use provledger::core::dsse::{Envelope, PAYLOAD_TYPE_IN_TOTO};
use provledger::core::entry::UnverifiedEntry;
use provledger::core::hash::{EntryHash, sha256};
use provledger::core::keys::SecretKey;
use provledger::core::statement::{
    Check, CheckResult, EntryRef, Nonce, PolicyEnvironment, PolicyKey, PolicyLog, PolicyPredicate, Predicate, Role,
    Statement, Subject,
};
use provledger::record::{self, Binding, BuildInput, ValidationInput};
use serde_json::{Value, json};

/// The origin of the vectors' log (its checkpoints' first line).
pub const LOG_ORIGIN: &str = "provledger.example/vectors";

pub const T0: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

pub fn key(name: &str) -> SecretKey {
    SecretKey::from_seed(&sha256(format!("provledger test vector key {name}").as_bytes()))
}

fn policy_key(name: &str, roles: &[Role]) -> PolicyKey {
    let k = key(name).public();
    PolicyKey { name: name.into(), id: k.id(), algorithm: "ed25519".into(), public: k.to_hex(), roles: roles.to_vec() }
}

pub fn policy(previous: Option<EntryRef>, ci_name: &str) -> Statement {
    let predicate = PolicyPredicate {
        version: 1,
        keys: vec![
            policy_key("root", &[Role::Policy]),
            policy_key(ci_name, &[Role::Build]),
            policy_key("qa", &[Role::Validation]),
            policy_key("release", &[Role::Promotion]),
        ],
        environments: vec![PolicyEnvironment {
            name: "dev".into(),
            required_checks: vec!["unit".into()],
            requires: None,
            tags: Vec::new(),
        }],
        policy_threshold: 1,
        log: PolicyLog::new(LOG_ORIGIN, key("log").public()).unwrap(),
        previous,
    };
    record::policy_statement(predicate, b"vector policy")
}

pub fn digest(n: u32) -> provledger::core::digest::Digest {
    provledger::core::digest::Digest::of(format!("vector image {n}").as_bytes())
}

/// The genesis hash of the vectors' chain (entry 0 of [`valid_chain`]).
pub fn genesis() -> EntryHash {
    static GENESIS: std::sync::OnceLock<EntryHash> = std::sync::OnceLock::new();
    *GENESIS.get_or_init(|| {
        let (e, _) = UnverifiedEntry::build(0, EntryHash::ZERO, T0 + 1000, sign(&policy(None, "ci"), "root"));
        e.hash()
    })
}

/// The binding of statement `n` of a kind to the vectors' chain, with a
/// nonce derived from both: `SHA-256("provledger test vector nonce KIND N")[..16]`.
pub fn binding(kind: &str, n: u32) -> Binding {
    let nonce = sha256(format!("provledger test vector nonce {kind} {n}").as_bytes());
    Binding { ledger: genesis(), nonce: Nonce::from_bytes(nonce[..16].try_into().unwrap()) }
}

/// A build of digest `n`, bound to the vectors' chain.
pub fn build(n: u32) -> Statement {
    unbound_build(n).bound(binding("build", n))
}

/// A build as statements were before they named their ledger.
pub fn unbound_build(n: u32) -> Statement {
    record::build_statement(BuildInput {
        image: format!("registry.example.com/acme/app:1.{n}@{}", digest(n)).parse().unwrap(),
        artifact: Some("app".into()),
        release: None,
        git_sha: Some(hex::encode(&sha256(&n.to_be_bytes())[..20])),
        source_repository: Some("https://git.example.com/acme/app".into()),
        builder_id: Some("https://ci.example.com/builders/release".into()),
        ci: Default::default(),
        registry_confirmed: false,
        registry: None,
        media_type: None,
        platforms: Vec::new(),
        time: T0 + n as u64,
        binding: None,
    })
}

/// A passing validation of digest `n`, bound to the vectors' chain.
pub fn validation(n: u32, build: EntryRef) -> Statement {
    unbound_validation(n, build, CheckResult::Pass).bound(binding("validation", n))
}

/// A validation as statements were before they named their ledger.
pub fn unbound_validation(n: u32, build: EntryRef, result: CheckResult) -> Statement {
    record::validation_statement(ValidationInput {
        image: format!("registry.example.com/acme/app@{}", digest(n)).parse().unwrap(),
        build: Some(build),
        checks: vec![Check { name: "unit".into(), result, evidence: None }],
        ci: Default::default(),
        registry_confirmed: false,
        registry: None,
        time: T0 + 100 + n as u64,
        binding: None,
    })
}

/// Signs payload bytes as they are (for statements no builder would write).
pub fn sign_payload(payload: Vec<u8>, signer: &str) -> Envelope {
    Envelope::sign(PAYLOAD_TYPE_IN_TOTO, payload, &[&key(signer)])
}

pub fn sign(s: &Statement, signer: &str) -> Envelope {
    Envelope::sign(PAYLOAD_TYPE_IN_TOTO, s.to_payload(), &[&key(signer)])
}

/// A chain under construction: bytes of each entry, in order.
#[derive(Default, Clone)]
pub struct Chain {
    pub entries: Vec<Vec<u8>>,
    pub hashes: Vec<EntryHash>,
}

impl Chain {
    pub fn push(&mut self, envelope: Envelope) -> EntryRef {
        let index = self.entries.len() as u64;
        let prev = self.hashes.last().copied().unwrap_or(EntryHash::ZERO);
        let (e, bytes) = UnverifiedEntry::build(index, prev, T0 + 1000 + index, envelope);
        self.push_raw(bytes, e.hash())
    }

    pub fn push_raw(&mut self, bytes: Vec<u8>, hash: EntryHash) -> EntryRef {
        self.entries.push(bytes);
        self.hashes.push(hash);
        EntryRef { index: self.entries.len() as u64 - 1, hash }
    }
}

pub fn promotion(n: u32, build: EntryRef, validations: Vec<EntryRef>) -> Statement {
    let image: provledger::core::image_ref::ImageRef =
        format!("registry.example.com/acme/app@{}", digest(n)).parse().unwrap();
    let allowed = provledger::gate::Allowed { from: None, build, validations };
    record::promotion_statement(
        &image,
        digest(n),
        "dev",
        allowed,
        record::PromotionInput {
            time: T0 + 200 + n as u64,
            binding: Some(binding("promotion", n)),
            ..Default::default()
        },
    )
}

/// The valid chain every reject case departs from.
pub fn valid_chain() -> (Chain, EntryRef) {
    let mut c = Chain::default();
    let p0 = c.push(sign(&policy(None, "ci"), "root"));
    let b1 = c.push(sign(&build(1), "ci"));
    let v2 = c.push(sign(&validation(1, b1), "qa"));
    // Rotate the ci key to ci2.
    c.push(sign(&policy(Some(p0), "ci2"), "root"));
    c.push(sign(&build(2), "ci2"));
    c.push(sign(&promotion(1, b1, vec![v2]), "release"));
    (c, b1)
}

fn vector(
    id: &str,
    description: &str,
    chain: &Chain,
    expect: &str,
    reject_at: Option<u64>,
    reason: Option<&str>,
) -> (String, Value) {
    let mut v = json!({
        "id": id,
        "description": description,
        "expect": expect,
        "entries": chain.entries.iter().map(hex::encode).collect::<Vec<_>>(),
    });
    if expect == "accept" {
        v["entry_hashes"] = json!(chain.hashes.iter().map(|h| h.to_string()).collect::<Vec<_>>());
        v["genesis"] = json!(chain.hashes[0].to_string());
    } else {
        v["reject_at"] = json!(reject_at);
        v["reason"] = json!(reason);
    }
    (format!("{id}.json"), v)
}

/// The validation entry (2) of the valid chain.
fn v2_of(valid: &Chain) -> EntryRef {
    EntryRef { index: 2, hash: valid.hashes[2] }
}

/// Replaces the entry at the end of `chain` with one built from `envelope`.
fn chain_with(prefix_len: usize, envelope: Envelope) -> Chain {
    let (full, _) = valid_chain();
    let mut c = Chain { entries: full.entries[..prefix_len].to_vec(), hashes: full.hashes[..prefix_len].to_vec() };
    c.push(envelope);
    c
}

pub fn all() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let (valid, b1) = valid_chain();
    out.push(vector(
        "accept-chain",
        "policy genesis, build, validation bound to it, key rotation, build by the new key, promotion to dev",
        &valid,
        "accept",
        None,
        None,
    ));

    let mut bad_sig = sign(&build(3), "ci");
    bad_sig.signatures[0].sig[10] ^= 0x01;
    out.push(vector(
        "reject-bad-signature",
        "one bit of the ed25519 signature flipped",
        &chain_with(2, bad_sig),
        "reject",
        Some(2),
        Some("bad-signature"),
    ));

    let mut wrong_prev = valid.clone();
    let (e, bytes) =
        UnverifiedEntry::build(2, EntryHash::from_bytes([0x11; 32]), T0 + 1002, sign(&validation(1, b1), "qa"));
    wrong_prev.entries[2] = bytes;
    wrong_prev.hashes[2] = e.hash();
    wrong_prev.entries.truncate(3);
    wrong_prev.hashes.truncate(3);
    out.push(vector(
        "reject-wrong-prev-hash",
        "entry 2 links to a hash that is not entry 1's",
        &wrong_prev,
        "reject",
        Some(2),
        Some("prev-hash"),
    ));

    let mut non_canonical = valid.clone();
    non_canonical.entries.truncate(2);
    non_canonical.hashes.truncate(2);
    let mut b = non_canonical.entries[1].clone();
    // "index": 1 written as 0x18 0x01 (a one-byte argument for a value < 24).
    assert_eq!(&b[..8], &[0xa5, 0x65, b'i', b'n', b'd', b'e', b'x', 0x01]);
    b.splice(7..8, [0x18, 0x01]);
    non_canonical.entries[1] = b;
    out.push(vector(
        "reject-non-canonical-cbor",
        "entry 1's index encoded with a non-minimal integer",
        &non_canonical,
        "reject",
        Some(1),
        Some("entry-encoding"),
    ));

    out.push(vector(
        "reject-wrong-role",
        "a validation signed by the ci key, which holds only the build role",
        &chain_with(2, sign(&validation(1, b1), "ci")),
        "reject",
        Some(2),
        Some("role"),
    ));

    let mut tag_only = build(4);
    tag_only.subjects = vec![Subject::tag_only("registry.example.com/acme/app:1.4".into())];
    out.push(vector(
        "reject-tag-only-subject",
        "a build whose subject has no digest, not marked dev-only",
        &chain_with(1, sign(&tag_only, "ci")),
        "reject",
        Some(1),
        Some("statement"),
    ));

    let mut newer = valid.clone();
    newer.entries.truncate(2);
    newer.hashes.truncate(2);
    let mut b = newer.entries[1].clone();
    assert_eq!(&b[8..17], &[0x67, b'v', b'e', b'r', b's', b'i', b'o', b'n', 0x01]);
    b[16] = 0x02;
    newer.entries[1] = b;
    out.push(vector(
        "reject-unknown-version",
        "entry version 2: written by a newer provledger",
        &newer,
        "reject",
        Some(1),
        Some("newer-version"),
    ));

    out.push(vector(
        "reject-replayed-envelope",
        "the build envelope of entry 1 appended again",
        &chain_with(3, sign(&build(1), "ci")),
        "reject",
        Some(3),
        Some("replay"),
    ));

    let wrong_build = EntryRef { index: b1.index, hash: EntryHash::from_bytes([0x22; 32]) };
    out.push(vector(
        "reject-validation-wrong-build-hash",
        "a validation naming entry 1 with a hash that is not entry 1's",
        &chain_with(2, sign(&validation(1, wrong_build), "qa")),
        "reject",
        Some(2),
        Some("validation-build"),
    ));

    let p0 = EntryRef { index: 0, hash: valid.hashes[0] };
    out.push(vector(
        "reject-policy-change-without-policy-role",
        "a policy change signed by the release key",
        &chain_with(3, sign(&policy(Some(p0), "ci2"), "release")),
        "reject",
        Some(3),
        Some("role"),
    ));

    out.push(vector(
        "reject-old-key-after-rotation",
        "a build signed by the ci key after the policy replaced it",
        &chain_with(4, sign(&build(5), "ci")),
        "reject",
        Some(4),
        Some("unknown-key"),
    ));

    let b4 = EntryRef { index: 4, hash: valid.hashes[4] };
    out.push(vector(
        "reject-promotion-without-gate",
        "a promotion of build 2's digest, which has no validation: the verifier replays the gate",
        &chain_with(5, sign(&promotion(2, b4, vec![]), "release")),
        "reject",
        Some(5),
        Some("gate-denied"),
    ));

    out.push(vector(
        "reject-promotion-wrong-evidence",
        "a promotion the gate allows, but naming no validation instead of entry 2",
        &chain_with(5, sign(&promotion(1, b1, vec![]), "release")),
        "reject",
        Some(5),
        Some("gate-evidence"),
    ));

    let mut genesis_build = Chain::default();
    genesis_build.push(sign(&build(1), "ci"));
    out.push(vector(
        "reject-genesis-not-policy",
        "entry 0 is a build",
        &genesis_build,
        "reject",
        Some(0),
        Some("genesis-not-policy"),
    ));

    let elsewhere = Binding { ledger: EntryHash::from_bytes([0x33; 32]), nonce: binding("build", 6).nonce };
    out.push(vector(
        "reject-statement-for-another-ledger",
        "a build whose provledger.ledger names another genesis hash",
        &chain_with(1, sign(&unbound_build(6).bound(elsewhere), "ci")),
        "reject",
        Some(1),
        Some("other-ledger"),
    ));

    // fail, pass, fail at the same time: three statements, told apart by
    // their nonces; without nonces the third is a replay of the first.
    let retried = |bind: bool| {
        let mut c = Chain::default();
        c.push(sign(&policy(None, "ci"), "root"));
        let b = c.push(sign(&if bind { build(7) } else { unbound_build(7) }, "ci"));
        for (i, result) in [CheckResult::Fail, CheckResult::Pass, CheckResult::Fail].into_iter().enumerate() {
            let v = unbound_validation(7, b, result);
            let v = if bind { v.bound(binding("retry", i as u32)) } else { v };
            c.push(sign(&v, "qa"));
        }
        c
    };
    out.push(vector(
        "accept-retried-outcomes",
        "validations fail, pass, fail of one digest made in the same second: distinct nonces, three entries",
        &retried(true),
        "accept",
        None,
        None,
    ));
    out.push(vector(
        "reject-retried-outcome-without-nonce",
        "the same, as statements were before nonces: the third is the first one replayed",
        &retried(false),
        "reject",
        Some(4),
        Some("replay"),
    ));
    let mut legacy = Chain::default();
    legacy.push(sign(&policy(None, "ci"), "root"));
    let lb = legacy.push(sign(&unbound_build(8), "ci"));
    legacy.push(sign(&unbound_validation(8, lb, CheckResult::Pass), "qa"));
    out.push(vector(
        "accept-unbound-statements",
        "a build and a validation that name no ledger and carry no nonce, as made before both existed",
        &legacy,
        "accept",
        None,
        None,
    ));

    // Releases: one revision each, and a rebuild within one resolved explicitly.
    let release_build = |n: u32, release: &str, sha_of: u32| {
        let mut s = build(n);
        if let provledger::core::statement::Predicate::Build(b) = &mut s.predicate {
            b.build_definition.external_parameters.release = Some(release.into());
            b.build_definition.resolved_dependencies[0]
                .digest
                .insert("gitCommit".into(), hex::encode(&sha256(&sha_of.to_be_bytes())[..20]));
        }
        s
    };
    let mut two_revisions = Chain::default();
    two_revisions.push(sign(&policy(None, "ci"), "root"));
    two_revisions.push(sign(&release_build(9, "r-1", 9), "ci"));
    two_revisions.push(sign(&release_build(10, "r-1", 10), "ci"));
    out.push(vector(
        "reject-release-two-revisions",
        "two builds of release r-1 from different source revisions",
        &two_revisions,
        "reject",
        Some(2),
        Some("release-revision"),
    ));
    let rebuilt = |supersedes: Vec<provledger::core::digest::Digest>| {
        let mut c = Chain::default();
        c.push(sign(&policy(None, "ci"), "root"));
        let b = c.push(sign(&release_build(11, "r-2", 11), "ci"));
        let v = c.push(sign(&validation(11, b), "qa"));
        // The artifact recorded again in the release, with another digest.
        let mut again = release_build(12, "r-2", 11);
        if let provledger::core::statement::Predicate::Build(p) = &mut again.predicate {
            p.build_definition.external_parameters.artifact = Some("app".into());
        }
        c.push(sign(&again, "ci"));
        let mut p = promotion(11, b, vec![v]);
        if let provledger::core::statement::Predicate::Promotion(pp) = &mut p.predicate {
            pp.release = Some(provledger::core::statement::ReleaseBinding {
                id: "r-2".into(),
                artifact: "app".into(),
                supersedes,
            });
        }
        c.push(sign(&p, "release"));
        c
    };
    out.push(vector(
        "reject-release-rebuild-unresolved",
        "a release promotion of an artifact rebuilt with another digest in the release, setting nothing aside",
        &rebuilt(vec![]),
        "reject",
        Some(4),
        Some("release-rebuild"),
    ));
    out.push(vector(
        "accept-release-rebuild-resolved",
        "the same promotion, naming the other digest as set aside",
        &rebuilt(vec![digest(12)]),
        "accept",
        None,
        None,
    ));

    let mut wrong_tag = promotion(1, b1, vec![v2_of(&valid)]);
    if let provledger::core::statement::Predicate::Promotion(p) = &mut wrong_tag.predicate {
        p.tag_target = Some("registry.example.com/acme/app:prod".into());
    }
    out.push(vector(
        "reject-promotion-tag-not-bound",
        "a promotion to dev whose tag target is the tag prod, which dev does not bind",
        &chain_with(5, sign(&wrong_tag, "release")),
        "reject",
        Some(5),
        Some("gate-denied"),
    ));

    // Every further MUST of sections 4 to 6, one reject vector each.
    let statement_case = |id: &str, description: &str, at: usize, envelope: Envelope| {
        vector(id, description, &chain_with(at, envelope), "reject", Some(at as u64), Some("statement"))
    };
    let with_build = |n: u32, change: &dyn Fn(&mut provledger::core::statement::BuildPredicate)| {
        let mut s = build(n);
        if let Predicate::Build(b) = &mut s.predicate {
            change(b);
        }
        s
    };
    let mut dev_pinned = build(13);
    if let Predicate::Build(b) = &mut dev_pinned.predicate {
        b.build_definition.internal_parameters.provledger.dev_only = true;
    }
    out.push(statement_case(
        "reject-dev-only-pinned-subject",
        "a build marked devOnly whose subject is pinned (devOnly is true exactly for a tag-only subject)",
        1,
        sign(&dev_pinned, "ci"),
    ));
    out.push(statement_case(
        "reject-offline-build-with-registry-fields",
        "a build with registryConfirmed false that carries a mediaType",
        1,
        sign(
            &with_build(14, &|b| {
                b.build_definition.external_parameters.media_type =
                    Some("application/vnd.oci.image.manifest.v1+json".into())
            }),
            "ci",
        ),
    ));
    out.push(statement_case(
        "reject-registry-without-confirmation",
        "a build naming a registry while registryConfirmed is false",
        1,
        sign(
            &with_build(15, &|b| {
                b.build_definition.internal_parameters.provledger.registry = Some("registry.example.com".into())
            }),
            "ci",
        ),
    ));
    let mut upper_name = build(16);
    upper_name.subjects[0].name = "Registry.Example.com/acme/app".into();
    if let Predicate::Build(b) = &mut upper_name.predicate {
        b.build_definition.external_parameters.image = format!("Registry.Example.com/acme/app:1.16@{}", digest(16));
    }
    out.push(statement_case(
        "reject-subject-name-not-canonical",
        "a subject name with an uppercase registry host (canonical: lowercase)",
        1,
        sign(&upper_name, "ci"),
    ));
    let text = String::from_utf8(build(17).to_payload()).unwrap();
    let hex17 = digest(17).hex();
    let twice = text.replacen(
        &format!("\"digest\":{{\"sha256\":\"{hex17}\"}}"),
        &format!("\"digest\":{{\"sha256\":\"{hex17}\",\"sha256\":\"{}\"}}", digest(18).hex()),
        1,
    );
    assert_ne!(twice, text);
    out.push(statement_case(
        "reject-duplicate-digest-key",
        "a subject whose digest set names sha256 twice",
        1,
        sign_payload(twice.into_bytes(), "ci"),
    ));
    out.push(statement_case(
        "reject-image-not-first-subject",
        "a build whose externalParameters.image names another digest than its first subject",
        1,
        sign(
            &with_build(19, &|b| {
                b.build_definition.external_parameters.image =
                    format!("registry.example.com/acme/app:1.19@{}", digest(20))
            }),
            "ci",
        ),
    ));
    out.push(statement_case(
        "reject-tag-not-the-image-tag",
        "a build whose tag is not the tag of its image",
        1,
        sign(&with_build(21, &|b| b.build_definition.external_parameters.tag = Some("9.9".into())), "ci"),
    ));
    out.push(statement_case(
        "reject-release-build-without-revision",
        "a build in a release that names no gitCommit",
        1,
        sign(
            &with_build(22, &|b| {
                b.build_definition.external_parameters.release = Some("r-3".into());
                b.build_definition.resolved_dependencies.clear();
            }),
            "ci",
        ),
    ));
    let mut no_build = validation(1, b1);
    if let Predicate::Validation(v) = &mut no_build.predicate {
        v.build = None;
    }
    out.push(statement_case(
        "reject-validation-without-build",
        "a validation that is not dev-only and names no build entry",
        2,
        sign(&no_build, "qa"),
    ));
    let mut dev_promotion = promotion(1, b1, vec![v2_of(&valid)]);
    if let Predicate::Promotion(p) = &mut dev_promotion.predicate {
        p.provledger.dev_only = true;
    }
    out.push(statement_case(
        "reject-promotion-dev-only",
        "a promotion marked devOnly",
        5,
        sign(&dev_promotion, "release"),
    ));
    let extra = String::from_utf8(build(23).to_payload()).unwrap().replacen('{', "{\"extra\":1,", 1);
    out.push(statement_case(
        "reject-unknown-statement-field",
        "a statement with a member the format does not define",
        1,
        sign_payload(extra.into_bytes(), "ci"),
    ));
    let dup_type = String::from_utf8(build(24).to_payload()).unwrap().replacen(
        '{',
        "{\"_type\":\"https://in-toto.io/Statement/v1\",",
        1,
    );
    out.push(statement_case(
        "reject-duplicate-statement-field",
        "a statement with _type twice",
        1,
        sign_payload(dup_type.into_bytes(), "ci"),
    ));

    let chain_case = |id: &str, description: &str, chain: &Chain, at: u64, reason: &str| {
        vector(id, description, chain, "reject", Some(at), Some(reason))
    };
    let mut genesis_previous = policy(None, "ci");
    if let Predicate::Policy(p) = &mut genesis_previous.predicate {
        p.previous = Some(EntryRef { index: 0, hash: EntryHash::from_bytes([0x44; 32]) });
    }
    let mut c = Chain::default();
    c.push(sign(&genesis_previous, "root"));
    out.push(chain_case(
        "reject-genesis-names-previous",
        "a genesis policy naming a previous policy",
        &c,
        0,
        "policy-previous",
    ));
    let wrong_previous = EntryRef { index: 0, hash: EntryHash::from_bytes([0x55; 32]) };
    out.push(chain_case(
        "reject-policy-change-wrong-previous",
        "a policy change naming another entry than the policy in force as previous",
        &chain_with(3, sign(&policy(Some(wrong_previous), "ci2"), "root")),
        3,
        "policy-previous",
    ));
    let mut no_policy_key = policy(None, "ci");
    if let Predicate::Policy(p) = &mut no_policy_key.predicate {
        p.keys.retain(|k| !k.roles.contains(&Role::Policy));
    }
    let mut c = Chain::default();
    c.push(sign(&no_policy_key, "root"));
    out.push(chain_case(
        "reject-policy-without-policy-key",
        "a genesis policy in which no key holds the policy role",
        &c,
        0,
        "policy-invalid",
    ));
    let mut back_in_time = valid.clone();
    back_in_time.entries.truncate(2);
    back_in_time.hashes.truncate(2);
    let (e, bytes) = UnverifiedEntry::build(2, back_in_time.hashes[1], T0, sign(&validation(1, b1), "qa"));
    back_in_time.push_raw(bytes, e.hash());
    out.push(chain_case(
        "reject-time-goes-back",
        "entry 2's integrated_time is before entry 1's",
        &back_in_time,
        2,
        "time-order",
    ));
    let mut twice_signed = sign(&build(25), "ci");
    twice_signed.signatures.push(twice_signed.signatures[0].clone());
    out.push(chain_case(
        "reject-duplicate-signer",
        "a build whose envelope carries the ci key's signature twice",
        &chain_with(1, twice_signed),
        1,
        "duplicate-signer",
    ));
    let other_type = Envelope::sign("application/json", build(26).to_payload(), &[&key("ci")]);
    out.push(chain_case(
        "reject-payload-type",
        "an envelope whose payloadType is not application/vnd.in-toto+json",
        &chain_with(1, other_type),
        1,
        "payload-type",
    ));
    let mut gap = valid.clone();
    gap.entries.truncate(1);
    gap.hashes.truncate(1);
    let (e, bytes) = UnverifiedEntry::build(2, gap.hashes[0], T0 + 1002, sign(&build(27), "ci"));
    gap.push_raw(bytes, e.hash());
    out.push(chain_case("reject-index-gap", "the entry at position 1 says it is entry 2", &gap, 1, "index"));
    let mut wrong_genesis = vector(
        "reject-wrong-genesis",
        "the accept chain checked against another genesis hash",
        &valid,
        "reject",
        Some(0),
        Some("genesis"),
    );
    wrong_genesis.1["genesis"] = json!("66".repeat(32));
    out.push(wrong_genesis);
    let before_build = validation(1, EntryRef { index: 2, hash: EntryHash::from_bytes([0x77; 32]) });
    out.push(chain_case(
        "reject-validation-names-later-build",
        "a validation naming its own position as the build",
        &chain_with(2, sign(&before_build, "qa")),
        2,
        "validation-build",
    ));

    let mut crowded = sign(&build(28), "ci");
    let sig = crowded.signatures[0].clone();
    crowded.signatures = vec![sig; 17];
    out.push(chain_case(
        "reject-too-many-signatures",
        "an envelope with 17 signatures (at most 16)",
        &chain_with(1, crowded),
        1,
        "envelope",
    ));
    let mut bad_keyid = sign(&build(29), "ci");
    bad_keyid.signatures[0].keyid = "ci".into();
    out.push(chain_case(
        "reject-malformed-key-id",
        "a signature whose keyid is not 64 lowercase hex characters",
        &chain_with(1, bad_keyid),
        1,
        "key-id",
    ));

    out.extend(checkpoint_vectors(&valid));

    out.extend(tree_vectors(&valid));

    let mut keys = serde_json::Map::new();
    for name in ["root", "ci", "ci2", "qa", "release", "log"] {
        let k = key(name);
        keys.insert(name.into(), json!({"seed_derivation": format!("SHA-256(\"provledger test vector key {name}\")"), "public": k.public().to_hex(), "id": k.id().to_string()}));
    }
    out.push(("keys.json".into(), Value::Object(keys)));
    out
}

/// Checkpoint notes (section 9): the accept chain's, and the same body with
/// an extension line, signed by the same key, which a verifier must refuse.
fn checkpoint_vectors(chain: &Chain) -> Vec<(String, Value)> {
    let (cp, note) = checkpoint(chain);
    let verifier = provledger::core::note::NoteVerifier::new(LOG_ORIGIN, key("log").public()).unwrap();
    let extended =
        provledger::core::note::sign_note(&format!("{}extension\n", cp.to_text()), LOG_ORIGIN, &key("log")).unwrap();
    let case = |id: &str, description: &str, expect: &str, note: &str| {
        let mut v = json!({"id": id, "kind": "checkpoint", "description": description, "expect": expect,
                           "note": note, "verifier_key": verifier.to_text()});
        if expect == "reject" {
            v["reason"] = json!("checkpoint");
        }
        (format!("{id}.json"), v)
    };
    vec![
        case("checkpoint-accept", "the accept chain's checkpoint", "accept", &note),
        case(
            "checkpoint-reject-extension-line",
            "the same checkpoint body with an extension line after the root, validly signed",
            "reject",
            &extended,
        ),
    ]
}

/// The signed checkpoint of a whole chain, by the vectors' log key.
pub fn checkpoint(chain: &Chain) -> (provledger::core::note::Checkpoint, String) {
    let mut frontier = provledger::tree::Frontier::default();
    for h in &chain.hashes {
        frontier.push(provledger::ledger::leaf_of(h), |_, _, _| {});
    }
    let cp =
        provledger::core::note::Checkpoint { origin: LOG_ORIGIN.into(), size: frontier.size(), root: frontier.root() };
    let note = provledger::core::note::sign_note(&cp.to_text(), LOG_ORIGIN, &key("log")).unwrap();
    (cp, note)
}

/// The bundle file of a chain.
pub fn bundle(chain: &Chain) -> Vec<u8> {
    let (_, note) = checkpoint(chain);
    let mut out = Vec::new();
    provledger::bundle::write_header(&mut out, &note, chain.entries.len() as u64).unwrap();
    for e in &chain.entries {
        provledger::bundle::write_entry(&mut out, e).unwrap();
    }
    out
}

/// The accept chain's Merkle tree, checkpoint, bundle and a promotion proof.
fn tree_vectors(chain: &Chain) -> Vec<(String, Value)> {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let leaves: Vec<_> = chain.hashes.iter().map(provledger::ledger::leaf_of).collect();
    let (cp, note) = checkpoint(chain);
    let inclusion = |i: u64| provledger::tree::inclusion_proof(&leaves, i as usize).unwrap();
    let proof_entry = |i: u64| {
        json!({
            "entry": b64(&chain.entries[i as usize]),
            "inclusion": {"leafIndex": i, "treeSize": cp.size, "hashes": inclusion(i).iter().map(|h| b64(h)).collect::<Vec<_>>()},
        })
    };
    let verifier = provledger::core::note::NoteVerifier::new(LOG_ORIGIN, key("log").public()).unwrap();
    // Entry 5 promotes digest 1 to dev on build 1 and validation 2; the
    // policy chain is entries 0 and 3.
    let entries: Vec<Value> = [0u64, 1, 2, 3, 5].into_iter().map(proof_entry).collect();
    let proof = json!({
        "version": 1,
        "digest": digest(1).to_string(),
        "environment": "dev",
        "promotion": 5,
        "checkpoint": note,
        "verifierKey": verifier.to_text(),
        "entries": entries,
    });
    vec![
        (
            "tree-accept-chain.json".into(),
            json!({
                "id": "tree-accept-chain",
                "description": "the Merkle tree of accept-chain: leaf hashes SHA-256(0x00 ‖ entry hash), the root, an inclusion proof per entry, a consistency proof from each prefix, and the checkpoint signed by the log key",
                "leaf_hashes": leaves.iter().map(|h| b64(h)).collect::<Vec<_>>(),
                "root": b64(&cp.root),
                "inclusion": (0..cp.size).map(|i| inclusion(i).iter().map(|h| b64(h)).collect::<Vec<_>>()).collect::<Vec<_>>(),
                "consistency": (1..=cp.size).map(|m| provledger::tree::consistency_proof(&leaves, m as usize).unwrap().iter().map(|h| b64(h)).collect::<Vec<_>>()).collect::<Vec<_>>(),
                "checkpoint": note,
                "log_verifier_key": verifier.to_text(),
            }),
        ),
        (
            "bundle-accept-chain.json".into(),
            json!({
                "id": "bundle-accept-chain",
                "description": "accept-chain exported as a bundle (hex of the file bytes); verifies against its genesis",
                "genesis": chain.hashes[0].to_string(),
                "bundle_hex": hex::encode(bundle(chain)),
            }),
        ),
        (
            "proof-accept-chain.json".into(),
            json!({
                "id": "proof-accept-chain",
                "description": "the promotion proof of entry 5 of accept-chain (digest 1 to dev); verifies against its genesis",
                "genesis": chain.hashes[0].to_string(),
                "proof": proof,
            }),
        ),
    ]
}

/// Appends builds of digests `*next..`, each followed by a passing validation,
/// in batches, until the ledger holds `target` entries (the last build may go
/// without its validation). Real appends: every entry is signed and verified.
pub fn fill<S: provledger::store::Store>(ledger: &provledger::ledger::Ledger<S>, next: &mut u32, target: u64) {
    const BATCH: u64 = 5_000;
    let count = |l: &provledger::ledger::Ledger<S>| l.store().head().unwrap().map_or(0, |h| h.count);
    let genesis = ledger.genesis_hash().unwrap().expect("an initialised ledger");
    let bind = |s: Statement| s.bound(Binding::fresh(genesis));
    while count(ledger) < target {
        let size = BATCH.min((target - count(ledger)).div_ceil(2)).max(1) as u32;
        let builds: Vec<Envelope> = (*next..*next + size).map(|i| sign(&bind(build(i)), "ci")).collect();
        let done = ledger.append_batch(builds, 2).unwrap();
        let left = target.saturating_sub(count(ledger)) as usize;
        let validations: Vec<Envelope> =
            done.iter().take(left).zip(*next..).map(|(b, i)| sign(&bind(validation(i, b.entry_ref())), "qa")).collect();
        if !validations.is_empty() {
            ledger.append_batch(validations, 2).unwrap();
        }
        *next += size;
    }
}
