//! `attach` and `fetch-attestations`: provenance next to the image.

use super::*;

/// The image a digest (or a pinned reference) names: the reference itself,
/// else the repository of the digest's newest build entry.
pub(super) fn image_of(ledger: &Ledger<LedgerStore>, text: &str) -> Result<ImageRef> {
    if let Ok(r) = text.parse::<ImageRef>()
        && r.is_pinned()
    {
        return Ok(r);
    }
    let digest = parse_digest(text)?;
    let image = audit::built_image(ledger, &digest)?.ok_or_else(|| {
        CliError::denied(format!("no build entry names {digest}, so its repository is unknown"))
            .hint("name the image as REPO@sha256:<digest>")
    })?;
    let image: ImageRef = parse_ref(&image)?;
    Ok(image.with_digest(digest))
}

pub(super) fn attach(ctx: &Ctx, text: &str, vsa: Option<&Path>) -> Result<()> {
    let ledger = ctx.open()?;
    let image = image_of(&ledger, text)?;
    let digest = image.digest().expect("pinned");
    let genesis_hash = ledger.genesis_hash()?.map(|g| g.to_string()).unwrap_or_default();
    let summary = vsa.map(|path| summary_for(path, &digest, &genesis_hash)).transpose()?;
    let layers: Vec<_> = audit::envelopes_for(&ledger, &digest)?
        .into_iter()
        .map(|e| registry::AttestationLayer {
            envelope_json: e.envelope_json,
            entry_index: e.index,
            entry_hash: e.hash.to_string(),
        })
        .collect();
    if layers.is_empty() {
        return Err(CliError::denied(format!("no entry of the ledger names {digest}: nothing to attach")));
    }
    let genesis = ledger.genesis_hash()?.map(|g| g.to_string()).unwrap_or_default();
    let registry = ctx.registry()?;
    let (artifact, scheme) = registry.attach(&image, digest, &layers, &genesis)?;
    let vsa_artifact = match summary {
        Some(bytes) => Some(
            registry
                .attach_statement(&image, digest, &bytes, provledger::audit::vsa::PREDICATE_TYPE, &genesis)?
                .0
                .to_string(),
        ),
        None => None,
    };
    let listed = match scheme {
        registry::ReferrersScheme::Api => "referrers-api",
        registry::ReferrersScheme::TagSchema => "tag-schema",
    };
    ctx.emit(&Attached {
        image: image.to_string(),
        artifact: artifact.to_string(),
        entries: layers.iter().map(|l| l.entry_index).collect(),
        listed_by: listed.to_string(),
        repository: image.name().to_string(),
        vsa_artifact,
    });
    Ok(())
}

/// The bytes of the verification summary at `path`, once it is shown to be
/// a DSSE envelope of a passing VSA statement about `digest`.
fn summary_for(path: &Path, digest: &Digest, genesis: &str) -> Result<Vec<u8>> {
    use provledger::audit::vsa::PREDICATE_TYPE;
    let bytes = input::read(path, "verification summary", provledger::core::dsse::MAX_PAYLOAD_LEN as u64 * 2)?;
    let bad = |why: String| CliError::operational(format!("--vsa {}: {why}", path.display()));
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    let envelope = Envelope::from_json_value(value).map_err(|e| bad(format!("not a DSSE envelope: {e}")))?;
    if envelope.payload_type != provledger::core::dsse::PAYLOAD_TYPE_IN_TOTO {
        return Err(bad(format!("payload type {:?}, not an in-toto statement", envelope.payload_type)));
    }
    let statement: serde_json::Value =
        serde_json::from_slice(&envelope.payload).map_err(|e| bad(format!("the statement is not JSON: {e}")))?;
    if statement["predicateType"] != PREDICATE_TYPE || statement["predicate"]["verificationResult"] != "PASSED" {
        return Err(bad(format!("not a passing verification summary ({PREDICATE_TYPE})")));
    }
    let about = statement["subject"]
        .as_array()
        .is_some_and(|s| s.iter().any(|s| s["digest"]["sha256"].as_str() == Some(digest.hex().as_str())));
    if !about {
        return Err(CliError::denied(format!("--vsa {}: the summary is not about {digest}", path.display())));
    }
    let ours = format!("{}{genesis}/", provledger::audit::vsa::ID_BASE);
    if !statement["predicate"]["verifier"]["id"].as_str().is_some_and(|id| id.starts_with(&ours)) {
        return Err(CliError::denied(format!(
            "--vsa {}: the summary was not made from this ledger (genesis {genesis})",
            path.display()
        )));
    }
    Ok(bytes)
}

pub(super) fn fetch_attestations(ctx: &Ctx, text: &str) -> Result<()> {
    let image = parse_ref(text)?;
    let reg = ctx.registry()?;
    let digest = match (image.digest(), image.tag()) {
        (Some(d), _) => d,
        (None, Some(tag)) => reg.manifest(&image, Target::Tag(tag)).map_err(absent_is_denied)?.digest,
        (None, None) => {
            return Err(CliError::operational(format!("{image} names neither a tag nor a digest")));
        }
    };
    let image = image.with_digest(digest);
    let fetched = reg.attestations(&image, digest)?;
    let ledger = ctx.open()?;
    let mut results = Vec::with_capacity(fetched.len());
    for f in &fetched {
        results.push((f, audit::check_attestation(&ledger, &digest, &f.bytes)?));
    }
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    let total = results.len();
    let attestations = results
        .into_iter()
        .map(|(f, r)| {
            let (entry, reason) = match r {
                Ok(a) => (Some(a), None),
                Err(why) => (None, Some(why.to_string())),
            };
            AttestationChecked { artifact: f.artifact.to_string(), layer: f.layer, ok: entry.is_some(), entry, reason }
        })
        .collect();
    ctx.emit(&AttestationsFetched { image: image.to_string(), digest: digest.to_string(), attestations });
    if failed > 0 {
        let msg = format!("{failed} of {total} attestation(s) of {image} failed verification");
        return Err(if ctx.json {
            CliError::reported(Code::Verification)
        } else {
            CliError::new(Code::Verification, msg)
        });
    }
    if total == 0 {
        return Err(CliError::denied(format!("the registry holds no provledger attestation for {image}")));
    }
    Ok(())
}

/// `vsa`: a SLSA Verification Summary Attestation that `text`'s digest was
/// promoted into `env`, signed by `key`, written to `out`.
pub(super) fn vsa(ctx: &Ctx, text: &str, env: &str, key: &Path, out: &Path, genesis: Option<&str>) -> Result<()> {
    use provledger::audit::vsa::{self, VsaError};
    let digest = parse_digest(text)?;
    let genesis =
        genesis.map(EntryHash::parse).transpose().map_err(|e| CliError::new(Code::Usage, format!("--genesis: {e}")))?;
    let key = ctx.secret(key)?;
    let ledger = ctx.open()?;
    let summary = vsa::statement(&ledger, &digest, env, genesis.as_ref(), now()).map_err(|e| match e {
        VsaError::NotPromoted(why) => CliError::denied(why.to_string()),
        VsaError::Unverified(why) => CliError::new(Code::Verification, format!("no summary written: {why}")),
        VsaError::Promotions(audit::PromotionsError::Ledger(l)) | VsaError::Ledger(l) => l.into(),
        VsaError::Promotions(other) => CliError::operational(other.to_string()),
    })?;
    let payload = serde_json::to_vec(&summary.statement).expect("JSON values serialise");
    let envelope = Envelope::sign(provledger::core::dsse::PAYLOAD_TYPE_IN_TOTO, payload, &[&key]);
    let text = serde_json::to_string(&envelope.to_json_value()).expect("JSON values serialise");
    write_atomically(out, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    ctx.emit(&VsaWritten {
        ok: true,
        out: out.to_path_buf(),
        digest: digest.to_string(),
        environment: env.to_string(),
        promotion: summary.promoted.promotion.index,
        signed_by: key.public().id().to_string(),
        predicate_type: vsa::PREDICATE_TYPE.to_string(),
    });
    Ok(())
}
