//! `promote` (one digest or a release) and `reconcile-tags`.

use super::*;

#[allow(clippy::too_many_arguments)]
pub(super) fn promote(
    ctx: &Ctx,
    key: &Path,
    image: &str,
    to: &str,
    dry_run: bool,
    offline: bool,
    tag_target: Option<&str>,
) -> Result<()> {
    // A tag-only reference is parsed (so that it can be denied with the other
    // reasons), never resolved: --allow-tag has no say in a promotion.
    let image = parse_ref(image)?;
    let tag_target = tag_target.map(parse_tag_target).transpose()?;
    let key = ctx.secret(key)?;
    let ledger = if dry_run { ctx.open()? } else { ctx.open_writer()? };
    // The same command again after the promotion was appended but its tag
    // move failed or was cut short: the promotion stands; move the tag.
    if let (Some(target), Some(digest)) = (&tag_target, image.digest())
        && let Some(t) = audit::tag_promotion_of(&ledger, &digest, to, &target.to_string())?
    {
        let served = ctx.registry()?.copy_to_tag(&image, digest, target)?;
        ctx.emit(&TagMoved {
            allowed: true,
            entry: EntryIndex { index: t.index },
            tag_target: t.target,
            moved: true,
            image: image.to_string(),
            to: to.to_string(),
            served: served.to_string(),
        });
        return Ok(());
    }
    let request = gate::Request {
        digest: image.digest(),
        to,
        promoter: key.id(),
        tag: tag_target.as_ref().and_then(|t| t.tag()),
    };
    let decision = ledger.decide(&request)?;
    let allowed = match decision {
        Decision::Deny(reasons) => return Err(deny_promotion(ctx, &image, to, &reasons)),
        Decision::Allow(a) => a,
    };
    if dry_run {
        ctx.emit(&PromotionAllowed {
            allowed: true,
            dry_run: true,
            image: image.to_string(),
            to: to.to_string(),
            evidence: Evidence {
                build: EntryId::from(&allowed.build),
                validations: allowed.validations.iter().map(EntryId::from).collect(),
            },
        });
        return Ok(());
    }
    let digest = image.digest().expect("allowed implies a digest");
    // The registry must still serve the digest before the promotion is
    // appended; the environment tag moves only once the promotion is
    // durable, so the tag never serves a digest the ledger did not promote.
    let registry = if offline {
        None
    } else {
        let reg = ctx.registry()?;
        let host = confirm_exists(&reg, &image)
            .map_err(|e| if e.code == Code::Denied { deny_promotion(ctx, &image, to, &[e.message]) } else { e })?;
        Some((reg, host))
    };
    let input = PromotionInput {
        registry: registry.as_ref().map(|(_, host)| host.clone()),
        tag_target: tag_target.as_ref().map(|t| t.to_string()),
        release: None,
        time: now(),
        binding: Some(ledger.binding()?),
    };
    let statement = record::promotion_statement(&image, digest, to, allowed, input);
    let v = ctx.append_all(&ledger, vec![sign(&statement, &[&key])])?.remove(0);
    if let (Some(target), Some((reg, _))) = (&tag_target, &registry) {
        reg.copy_to_tag(&image, digest, target).map_err(|e| {
            let e = CliError::from(e);
            CliError::new(
                e.code,
                format!(
                    "promoted {image} to {to} (entry {}), but moving {target} to it failed: {}",
                    v.index, e.message
                ),
            )
            .hint(format!(
                "the promotion stands; rerun the same command, or `provledger reconcile-tags --env {to}`, to move the tag"
            ))
        })?;
    }
    ctx.emit(&Promoted {
        allowed: true,
        image: image.to_string(),
        to: to.to_string(),
        tag_target: tag_target.as_ref().map(ImageRef::to_string),
        entry: v,
        digest: digest.to_string(),
    });
    Ok(())
}

/// Makes each environment tag serve the digest of the newest promotion that
/// names it.
pub(super) fn reconcile_tags(ctx: &Ctx, env: Option<&str>, check: bool) -> Result<()> {
    let ledger = ctx.open()?;
    if let Some(e) = env
        && ledger.policy()?.1.environment(e).is_none()
    {
        return Err(CliError::operational(format!("environment {e:?} is not in the policy in force")));
    }
    let targets = audit::tag_targets(&ledger, env)?;
    let reg = if targets.is_empty() { None } else { Some(ctx.registry()?) };
    let mut rows = Vec::new();
    let mut drift = 0;
    for t in &targets {
        let reg = reg.as_ref().expect("a registry for each target");
        let target = parse_tag_target(&t.target)?;
        let want: Digest = parse_digest(&t.digest)?;
        let serves = match reg.manifest(&target, Target::Tag(target.tag().expect("a tag target has a tag"))) {
            Ok(m) => Some(m.digest),
            Err(registry::RegistryError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let ok = serves == Some(want);
        let mut moved = false;
        if !ok {
            drift += 1;
            if !check {
                let image = parse_ref(&format!("{}@{want}", t.image))?;
                reg.copy_to_tag(&image, want, &target)?;
                moved = true;
            }
        }
        rows.push((t, serves, ok, moved));
    }
    let tags = rows
        .into_iter()
        .map(|(t, serves, in_place, moved)| TagState {
            environment: t.environment.clone(),
            tag_target: t.target.clone(),
            entry: t.index,
            digest: t.digest.clone(),
            served: serves.map(|d| d.to_string()),
            in_place,
            moved,
        })
        .collect();
    ctx.emit(&TagsReconciled { ok: !check || drift == 0, tags });
    if check && drift > 0 {
        return Err(CliError::reported(Code::Denied));
    }
    Ok(())
}

/// `--tag-target`: `REPO:TAG`, no digest.
pub(super) fn parse_tag_target(text: &str) -> Result<ImageRef> {
    let t = parse_ref(text)?;
    if t.tag().is_none() || t.is_pinned() {
        return Err(CliError::operational(format!("--tag-target {text}: expected REPO:TAG, without a digest")));
    }
    Ok(t)
}

/// Prints every reason a promotion is denied; exit 3.
pub(super) fn deny_promotion(ctx: &Ctx, image: &ImageRef, to: &str, reasons: &[String]) -> CliError {
    ctx.emit(&PromotionDenied {
        allowed: false,
        image: Some(image.to_string()),
        release: None,
        to: to.to_string(),
        reasons: reasons.to_vec(),
    });
    CliError::reported(Code::Denied)
}

/// Promotes every artifact of a release, or none: the release gate
/// ([`Ledger::decide_release`]) chooses each artifact's digest and asks the
/// promotion gate; all promotions are appended in one atomic batch.
pub(super) fn promote_release(
    ctx: &Ctx,
    key: &Path,
    release: &str,
    to: &str,
    dry_run: bool,
    offline: bool,
    resolve: &[String],
) -> Result<()> {
    let mut chosen = BTreeMap::new();
    for r in resolve {
        let (artifact, digest) = r
            .split_once('=')
            .ok_or_else(|| CliError::new(Code::Usage, format!("--resolve {r:?}: expected ARTIFACT=sha256:<digest>")))?;
        let digest =
            digest.parse::<Digest>().map_err(|e| CliError::new(Code::Usage, format!("--resolve {artifact}: {e}")))?;
        if chosen.insert(artifact.to_string(), digest).is_some() {
            return Err(CliError::new(Code::Usage, format!("--resolve {artifact} is given twice")));
        }
    }
    let key = ctx.secret(key)?;
    let ledger = if dry_run { ctx.open()? } else { ctx.open_writer()? };
    let mut reasons = Vec::new();
    let mut allowed = Vec::new();
    match ledger.decide_release(release, to, key.id(), &chosen)? {
        ReleaseDecision::Deny(rs) => reasons = rs,
        ReleaseDecision::Allow(artifacts) => {
            for a in artifacts {
                let image: ImageRef = a
                    .image
                    .parse()
                    .map_err(|e| CliError::operational(format!("entry {}: {e}", a.choice.build_index)))?;
                allowed.push((image.with_digest(a.choice.digest), a));
            }
        }
    }
    // Every artifact must still be in its registry (not asked on a dry run).
    let confirmed = reasons.is_empty() && !dry_run && !offline;
    if confirmed {
        let reg = ctx.registry()?;
        for (image, a) in &allowed {
            match confirm_exists(&reg, image) {
                Ok(_) => {}
                Err(e) if e.code == Code::Denied => {
                    reasons.push(format!("{} ({}): {}", a.choice.artifact, a.choice.digest, e.message))
                }
                Err(e) => return Err(e),
            }
        }
    }
    if !reasons.is_empty() {
        ctx.emit(&PromotionDenied {
            allowed: false,
            image: None,
            release: Some(release.to_string()),
            to: to.to_string(),
            reasons,
        });
        return Err(CliError::reported(Code::Denied));
    }
    let choices = || {
        allowed
            .iter()
            .map(|(image, a)| ArtifactChoice {
                artifact: a.choice.artifact.clone(),
                digest: a.choice.digest.to_string(),
                supersedes: a.choice.supersedes.iter().map(Digest::to_string).collect(),
                image: image.to_string(),
            })
            .collect()
    };
    let report = |entries| ReleasePromoted {
        allowed: true,
        dry_run,
        release: release.to_string(),
        to: to.to_string(),
        artifacts: choices(),
        entries,
    };
    if dry_run {
        ctx.emit(&report(None));
        return Ok(());
    }
    let time = now();
    // One read of the genesis; a fresh nonce for each promotion.
    let genesis = ledger.binding()?.ledger;
    let mut envelopes = Vec::with_capacity(allowed.len());
    for (image, a) in &allowed {
        // Each promotion names the registry that confirmed its own artifact.
        let input = PromotionInput {
            registry: confirmed.then(|| image.registry().to_string()),
            tag_target: None,
            release: Some(ReleaseBinding {
                id: release.to_string(),
                artifact: a.choice.artifact.clone(),
                supersedes: a.choice.supersedes.clone(),
            }),
            time,
            binding: Some(record::Binding::fresh(genesis)),
        };
        let statement = record::promotion_statement(image, a.choice.digest, to, a.allowed.clone(), input);
        envelopes.push(sign(&statement, &[&key]));
    }
    let done = ctx.append_all(&ledger, envelopes)?;
    ctx.emit(&report(Some(done)));
    Ok(())
}
