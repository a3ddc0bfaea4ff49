//! `record build` and `record validation`: what CI and validation lanes record.

use super::*;

/// A reference with a digest, or, for local development only, a tag-only one.
pub(super) fn require_pinned(image: ImageRef, allow_tag: bool) -> Result<ImageRef> {
    let allow = allow_tag || env_flag("ALLOW_TAG") || env_flag("DEV_MODE");
    if !image.is_pinned() && !allow {
        return Err(CliError::denied(format!("image reference {image} has no digest: a tag can move, so it identifies nothing"))
            .hint("pass REPO:TAG@sha256:<digest>; for local development only, --allow-tag (or ALLOW_TAG=1 / DEV_MODE=1) records it as dev-only"));
    }
    Ok(image)
}

/// What a registry confirmed about a build's image.
pub(super) struct Confirmed {
    registry: String,
    media_type: String,
    platforms: Vec<provledger::core::statement::PlatformManifest>,
}

/// Resolves a build's reference in the registry: the tag (if given) names a
/// manifest whose bytes hash to the digest recorded; a digest the build lane
/// also gave must be that one.
pub(super) fn resolve_build(ctx: &Ctx, image: ImageRef) -> Result<(ImageRef, Confirmed)> {
    if image.tag().is_none() && image.digest().is_none() {
        return Err(CliError::operational(format!(
            "image reference {image} names neither a tag nor a digest: there is nothing to resolve"
        )));
    }
    let resolved = ctx.registry()?.resolve(&image).map_err(absent_is_denied)?;
    let served = resolved.manifest.digest;
    if let Some(reported) = image.digest()
        && reported != served
    {
        return Err(CliError::denied(format!(
            "registry {} serves {served} under {}:{}, but the build lane reported {reported}: same label, \
             different artifact; nothing recorded",
            image.registry(),
            image.name(),
            image.tag().unwrap_or_default()
        ))
        .hint("record the digest the registry serves, or find out which image the build lane pushed"));
    }
    let confirmed = Confirmed {
        registry: image.registry().to_string(),
        media_type: resolved.manifest.media_type,
        platforms: resolved.platforms,
    };
    Ok((image.with_digest(served), confirmed))
}

/// Confirms that the registry still serves the reference's digest.
pub(super) fn confirm_exists(registry: &Registry, image: &ImageRef) -> Result<String> {
    let digest = image.digest().expect("a pinned reference");
    if registry.exists(image, digest)? {
        return Ok(image.registry().to_string());
    }
    Err(CliError::denied(format!(
        "{digest} is not in registry {} (repository {}): it was deleted or never pushed",
        image.registry(),
        image.repository()
    )))
}

/// A reference the registry does not have is missing evidence (exit 3).
pub(super) fn absent_is_denied(e: registry::RegistryError) -> CliError {
    match e {
        registry::RegistryError::NotFound { .. } => CliError::denied(e.to_string()),
        other => other.into(),
    }
}

pub(super) fn ci_run(flags: CiFlags, env: &CiEnv) -> CiRun {
    CiRun {
        run_url: flags.ci_run_url.or_else(|| env.run.run_url.clone()),
        run_id: flags.ci_run_id.or_else(|| env.run.run_id.clone()),
        workflow: flags.ci_workflow.or_else(|| env.run.workflow.clone()),
        repository: flags.ci_repository.or_else(|| env.run.repository.clone()),
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn record_build(
    ctx: &Ctx,
    common: Common,
    image: &str,
    git_sha: Option<String>,
    artifact: Option<String>,
    release: Option<String>,
    builder_id: Option<String>,
    ci: CiFlags,
) -> Result<()> {
    let image = parse_ref(image)?;
    let env = CiEnv::from_env();
    let git_sha = git_sha.or_else(|| env.git_sha.clone()).map(|s| s.to_ascii_lowercase());
    if let Some(s) = &git_sha {
        check_git_sha(s).map_err(|e| CliError::operational(e.to_string()))?;
    }
    if let Some(a) = &artifact {
        check_name("artifact", a).map_err(|e| CliError::operational(e.to_string()))?;
    }
    if let Some(r) = &release {
        check_name("release", r).map_err(|e| CliError::operational(e.to_string()))?;
    }
    let key = ctx.secret(&common.key)?;
    // The registry is asked before the ledger is opened, so that no other
    // writer waits on the lock through network round trips; offline, the
    // reference must carry its digest.
    let (image, confirmed) = if common.offline {
        (require_pinned(image, common.allow_tag)?, None)
    } else {
        let (image, c) = resolve_build(ctx, image)?;
        (image, Some(c))
    };
    let ledger = ctx.open_writer()?;
    // One source revision per release is a chain rule: the append refuses
    // a build that breaks it, here and on a server alike.
    let in_release = release.is_some();
    let run = ci_run(ci, &env);
    let statement = record::build_statement(BuildInput {
        source_repository: run.repository.clone(),
        image,
        artifact,
        release,
        git_sha,
        builder_id: builder_id.or(env.builder_id),
        ci: run,
        registry_confirmed: confirmed.is_some(),
        media_type: confirmed.as_ref().map(|c| c.media_type.clone()),
        platforms: confirmed.as_ref().map(|c| c.platforms.clone()).unwrap_or_default(),
        registry: confirmed.map(|c| c.registry),
        time: now(),
        binding: Some(ledger.binding()?),
    });
    let v = append(ctx, &ledger, sign(&statement, &[&key])).map_err(|e| match e.code {
        Code::Denied if in_release => {
            e.hint("artifacts of one release are built from one source revision; use a new release id")
        }
        _ => e,
    })?;
    // A rebuild is recorded, and flagged: its digest has no validation yet.
    // The entry is durable by now: a failure to look is a warning, never a
    // failed command (which would ask a script to record it again).
    if let Some(d) = v.digests.first() {
        match audit::show(&ledger, d) {
            Ok(Some(r)) => {
                for f in r.findings.iter().filter(|f| f.is_rebuild()) {
                    eprintln!("warning: {f}");
                }
            }
            Ok(None) => {}
            Err(e) => eprintln!("warning: entry {} is recorded, but checking it for a rebuild failed: {e}", v.index),
        }
    }
    Ok(())
}

pub(super) fn parse_checks(checks: &[String], evidence: &[String]) -> Result<Vec<Check>> {
    let mut out: Vec<Check> = Vec::new();
    for c in checks {
        let (name, result) = c
            .split_once('=')
            .ok_or_else(|| CliError::operational(format!("--check {c:?}: expected NAME=pass or NAME=fail")))?;
        let result = match result {
            "pass" => CheckResult::Pass,
            "fail" => CheckResult::Fail,
            other => {
                return Err(CliError::operational(format!(
                    "--check {name}: result {other:?} is neither pass nor fail"
                )));
            }
        };
        check_name("check", name).map_err(|e| CliError::operational(format!("--check: {e}")))?;
        if out.iter().any(|x| x.name == name) {
            return Err(CliError::operational(format!("--check {name} is given twice")));
        }
        out.push(Check { name: name.to_string(), result, evidence: None });
    }
    for e in evidence {
        let (name, url) =
            e.split_once('=').ok_or_else(|| CliError::operational(format!("--evidence {e:?}: expected NAME=URL")))?;
        let check = out
            .iter_mut()
            .find(|c| c.name == name)
            .ok_or_else(|| CliError::operational(format!("--evidence {name}: no --check {name} given")))?;
        check.evidence = Some(url.to_string());
    }
    Ok(out)
}

pub(super) fn record_validation(
    ctx: &Ctx,
    common: Common,
    image: &str,
    checks: &[String],
    evidence: &[String],
    ci: CiFlags,
) -> Result<()> {
    let image = require_pinned(parse_ref(image)?, common.allow_tag)?;
    let checks = parse_checks(checks, evidence)?;
    let key = ctx.secret(&common.key)?;
    // A validation names the digest it checked; the registry confirms it
    // publishes that digest (a tag-only dev record has nothing to confirm),
    // before the ledger's lock is taken.
    let registry = match (common.offline, image.is_pinned()) {
        (false, true) => Some(confirm_exists(&ctx.registry()?, &image)?),
        _ => None,
    };
    let ledger = ctx.open_writer()?;
    let build = match image.digest() {
        Some(d) => {
            let (r, _) = ledger.latest_build_for(&d)?.ok_or_else(|| {
                CliError::denied(format!(
                    "no build entry for {d} in the ledger: a validation must name the build it checked"
                ))
                .hint("record the build first with `provledger record build`")
            })?;
            Some(r)
        }
        None => None,
    };
    let statement = record::validation_statement(ValidationInput {
        image,
        build,
        checks,
        ci: ci_run(ci, &CiEnv::from_env()),
        registry_confirmed: registry.is_some(),
        registry,
        time: now(),
        binding: Some(ledger.binding()?),
    });
    append(ctx, &ledger, sign(&statement, &[&key])).map(|_| ())
}
