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

pub(super) fn check_refs(ctx: &Ctx, files: &[PathBuf], allow_tag: bool) -> Result<()> {
    let allow = allow_tag || env_flag("ALLOW_TAG") || env_flag("DEV_MODE");
    let mut found = Vec::new();
    for f in files {
        let text = input::read_text(f, "manifest", input::MAX_MANIFEST_FILE)?;
        let unpinned = manifests::unpinned_images(&text)
            .map_err(|e| CliError::operational(format!("{}:{}: not valid YAML: {}", f.display(), e.line, e.message)))?;
        found.extend(unpinned.into_iter().map(|u| UnpinnedRef::new(f.display().to_string(), u)));
    }
    let count = found.len();
    ctx.emit(&RefsChecked {
        ok: found.is_empty(),
        allowed_by_dev_mode: allow && !found.is_empty(),
        unpinned: found,
        files: files.len(),
        allowed: allow,
    });
    if count == 0 || allow {
        return Ok(());
    }
    if ctx.json {
        return Err(CliError::reported(Code::Denied));
    }
    Err(CliError::denied(format!("{count} image reference(s) not pinned to a digest"))
        .hint("pin each as REPO:TAG@sha256:<digest>; --allow-tag turns this into warnings for local development only"))
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
