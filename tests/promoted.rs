//! The verifier crate's "is this digest promoted into ENV" entry point,
//! from a chain verified entry by entry and from a verified promotion
//! proof, on a ledger made by the CLI.

mod common;

use common::{Env, digest, image};
use provledger::core::digest::Digest;
use provledger::core::hash::EntryHash;
use provledger::promoted::{NotPromoted, Promotions};
use provledger::proof::PromotionProof;

fn d(seed: &str) -> Digest {
    digest(seed).parse().unwrap()
}

#[test]
fn a_verified_chain_answers_promoted_into_with_the_entries_and_why_not() {
    let (env, genesis) = Env::initialised();
    env.release_to_prod(&image("app"));
    let dev_only = image("dev-only");
    env.build(&dev_only);
    env.validate(&dev_only, &["unit=pass", "integration=pass"]);
    let dev = env.promote(&dev_only, "dev");
    env.build(&image("built-only"));
    // A newer release into prod does not take the first one's eligibility back.
    env.release_to_prod(&image("app-2"));

    let log = env.json(&["log"]);
    let mut promotions = Promotions::new();
    let genesis = EntryHash::parse(&genesis).unwrap();
    env.writer().verify(Some(&genesis), |v| promotions.record(v)).unwrap();
    assert_eq!(promotions.size(), log.as_array().unwrap().len() as u64);

    let app = promotions.promoted(&d("app"), "prod").unwrap();
    let entry = &log[app.promotion.index as usize];
    assert_eq!(entry["hash"].as_str().unwrap(), app.promotion.hash.to_string());
    assert_eq!(app.from.as_deref(), Some("staging"));
    assert_eq!(app.validations.len(), 2, "{app:?}");
    assert!(app.time.is_some());
    assert!(promotions.promoted(&d("app-2"), "prod").is_ok());
    assert!(promotions.promoted(&d("app"), "dev").is_ok());
    assert_eq!(
        promotions.promoted(&d("dev-only"), "dev").unwrap().promotion.index,
        dev["entry"]["index"].as_u64().unwrap()
    );

    let why = promotions.promoted(&d("dev-only"), "prod").unwrap_err();
    assert_eq!(why, NotPromoted::Elsewhere { digest: d("dev-only"), env: "prod".into(), into: vec!["dev".into()] });
    assert_eq!(
        why.to_string(),
        format!("{} was never promoted into prod; it was promoted into dev", digest("dev-only"))
    );
    for never in ["built-only", "not-in-the-ledger"] {
        let why = promotions.promoted(&d(never), "prod").unwrap_err();
        assert_eq!(why, NotPromoted::Never { digest: d(never), env: "prod".into() });
    }
}

#[test]
fn a_verified_promotion_proof_answers_for_its_one_promotion() {
    let (env, genesis) = Env::initialised();
    env.release_to_prod(&image("app"));
    let out = env.path("app.proof");
    env.ok(&["prove", &digest("app"), "--env", "prod", "--out", &out]);
    let proof = PromotionProof::parse(&std::fs::read(&out).unwrap()).unwrap();
    let report = proof.verify(&EntryHash::parse(&genesis).unwrap()).unwrap();
    let promotions = Promotions::of_proof(&report);
    let shown = promotions.promoted(&d("app"), "prod").unwrap();
    assert_eq!(shown.promotion, report.promotion);
    assert_eq!(shown.build, report.build);
    assert_eq!(promotions.size(), report.checkpoint.checkpoint.size);
    // The proof shows nothing else.
    assert!(matches!(promotions.promoted(&d("app"), "staging"), Err(NotPromoted::Elsewhere { .. })));
    assert!(matches!(promotions.promoted(&d("other"), "prod"), Err(NotPromoted::Never { .. })));
}
