//! `show`, `history`, `log`, `release-metadata`, `check-bundle` and `check-refs`: answers from the ledger and checks of files.

use super::*;

pub(super) fn release_metadata(ctx: &Ctx, text: &str, out: Option<&Path>) -> Result<()> {
    let digest = parse_digest(text)?;
    let ledger = ctx.open()?;
    let Some(doc) = audit::release_metadata(&ledger, &digest)? else {
        return Err(CliError::denied(format!("no build of {digest} is recorded: no metadata can be derived")));
    };
    let text = serde_json::to_string_pretty(&doc).expect("json") + "\n";
    match out {
        Some(p) => {
            write_atomically(p, |w| std::io::Write::write_all(w, text.as_bytes()))?;
            if !ctx.json {
                println!("wrote {}", p.display());
            }
        }
        None => print!("{text}"),
    }
    Ok(())
}

pub(super) fn check_bundle(ctx: &Ctx, file: &Path, require_ci: bool) -> Result<()> {
    let text = input::read_text(file, "release metadata", input::MAX_RELEASE_METADATA_FILE)?;
    let doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::operational(format!("{}:{}: not JSON: {e}", file.display(), e.line())))?;
    let missing = audit::missing_keys(&doc, require_ci);
    ctx.emit(&BundleChecked { ok: missing.is_empty(), file: file.to_path_buf(), missing: missing.clone() });
    if missing.is_empty() {
        return Ok(());
    }
    if ctx.json {
        return Err(CliError::reported(Code::Denied));
    }
    Err(CliError::denied(format!("{} is incomplete: missing {}", file.display(), missing.join(", "))))
}

pub(super) fn show(ctx: &Ctx, text: &str) -> Result<()> {
    let digest = parse_digest(text)?;
    let ledger = ctx.open()?;
    let Some(r) = audit::show(&ledger, &digest)? else {
        return Err(CliError::denied(format!("no entry of the ledger names {digest}")));
    };
    ctx.emit(&Shown(r));
    Ok(())
}

pub(super) fn check_refs(ctx: &Ctx, files: &[PathBuf], allow_tag: bool, env: Option<&str>) -> Result<()> {
    // A reference without a digest cannot be shown promoted: never allowed with --env.
    let allow = env.is_none() && (allow_tag || env_flag("ALLOW_TAG") || env_flag("DEV_MODE"));
    let mut unpinned = Vec::new();
    let mut pinned = Vec::new();
    for f in files {
        let text = input::read_text(f, "manifest", input::MAX_MANIFEST_FILE)?;
        let images = manifests::images(&text)
            .map_err(|e| CliError::operational(format!("{}:{}: not valid YAML: {}", f.display(), e.line, e.message)))?;
        for image in images {
            match image {
                manifests::Image::Unpinned(u) => unpinned.push(UnpinnedRef::new(f.display().to_string(), u)),
                manifests::Image::Pinned { line, reference, digest } => pinned.push((f, line, reference, digest)),
            }
        }
    }
    let mut unpromoted = Vec::new();
    if let Some(env) = env {
        let promotions = audit::promotions(&ctx.open()?, env).map_err(|e| match e {
            audit::PromotionsError::UnknownEnvironment(_) => CliError::operational(e.to_string()),
            audit::PromotionsError::Ledger(e) => e.into(),
        })?;
        for (f, line, reference, digest) in pinned {
            if let Err(why) = promotions.promoted(&digest, env) {
                unpromoted.push(UnpinnedRef { file: f.display().to_string(), line, reference, why: why.to_string() });
            }
        }
    }
    let (n_unpinned, n_unpromoted) = (unpinned.len(), unpromoted.len());
    ctx.emit(&RefsChecked {
        ok: unpinned.is_empty() && unpromoted.is_empty(),
        allowed_by_dev_mode: allow && !unpinned.is_empty(),
        unpinned,
        env: env.map(str::to_string),
        unpromoted,
        files: files.len(),
        allowed: allow,
    });
    if (n_unpinned == 0 || allow) && n_unpromoted == 0 {
        return Ok(());
    }
    if ctx.json {
        return Err(CliError::reported(Code::Denied));
    }
    match env {
        Some(env) => Err(CliError::denied(format!(
            "{} image reference(s) not pinned to a digest promoted into {env}",
            n_unpinned + n_unpromoted
        ))
        .hint(format!("deploy only digests the ledger promoted into {env} (`provledger history --env {env}`)"))),
        None => Err(CliError::denied(format!("{n_unpinned} image reference(s) not pinned to a digest")).hint(
            "pin each as REPO:TAG@sha256:<digest>; --allow-tag turns this into warnings for local development only",
        )),
    }
}

pub(super) fn history(ctx: &Ctx, env: &str) -> Result<()> {
    let ledger = ctx.open()?;
    let r = audit::history(&ledger, env)?;
    if r.promotions.is_empty() && ledger.policy()?.1.environment(env).is_none() {
        return Err(CliError::operational(format!(
            "environment {env:?} is not in the policy and was never promoted into"
        )));
    }
    ctx.emit(&History(r));
    Ok(())
}

pub(super) fn log(ctx: &Ctx) -> Result<()> {
    let ledger = ctx.open()?;
    let policy = ledger.policy()?.1;
    let mut rows = Vec::new();
    let result = ledger.verify(None, |v| rows.push(v.clone()));
    let signer_labels = rows
        .iter()
        .map(|v| {
            let names: Vec<String> =
                v.signers().iter().map(|id| policy_name(&policy, id).unwrap_or_else(|| id.short())).collect();
            names.join(",")
        })
        .collect();
    let entries = rows.iter().map(|v| EntryReport::of(v).with_envelope(v.entry())).collect();
    ctx.emit(&LogReport { entries, signer_labels });
    result.map(|_| ()).map_err(CliError::from_verify)
}

pub(super) fn policy_name(policy: &provledger::policy::Policy, id: &provledger::core::keys::KeyId) -> Option<String> {
    policy.key(id).map(|k| format!("{} {}", k.name, id.short()))
}
