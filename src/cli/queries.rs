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
    ctx.emit(json!({"ok": missing.is_empty(), "file": file, "missing": missing}), || {
        if missing.is_empty() {
            println!("ok: {} is complete", file.display());
        }
    });
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
    if ctx.json {
        println!("{}", serde_json::to_value(&r).expect("report serialises"));
        return Ok(());
    }
    let who = audit::Signer::labels;
    println!("{digest}");
    for b in &r.builds {
        println!(
            "  built     entry {:<5} {}  by {}  {}{}",
            b.index,
            b.recorded_at,
            who(&b.signers),
            b.image,
            if b.dev_only { " [dev-only]" } else { "" }
        );
        println!(
            "            revision {}  source {}",
            b.git_sha.as_deref().unwrap_or("-"),
            b.source_repository.as_deref().unwrap_or("-")
        );
        println!(
            "            builder {}  run {}",
            b.builder_id,
            b.ci.as_ref().and_then(|c| c.run_url.as_deref()).unwrap_or("-")
        );
        match &b.registry {
            Some(r) if b.registry_confirmed => {
                println!("            confirmed by registry {r} ({})", b.media_type.as_deref().unwrap_or("-"))
            }
            _ => println!("            digest not confirmed by a registry (recorded --offline)"),
        }
        for p in &b.platforms {
            println!("            platform {} {}", p.platform(), p.digest);
        }
    }
    for v in &r.validations {
        let checks: Vec<String> = v.checks.iter().map(|c| format!("{}={}", c.name, c.result)).collect();
        println!("  validated entry {:<5} {}  by {}  {}", v.index, v.recorded_at, who(&v.signers), checks.join(" "));
    }
    for p in &r.promotions {
        println!(
            "  promoted  entry {:<5} {}  by {}  {} -> {} (evidence: build {}, validations {:?})",
            p.index,
            p.recorded_at,
            who(&p.signers),
            p.from.as_deref().unwrap_or("-"),
            p.to,
            p.build_index,
            p.validation_indexes
        );
        if let Some(t) = &p.tag_target {
            println!("            tag {t} moved to the digest");
        }
    }
    for f in &r.findings {
        println!("  finding: {f}");
    }
    Ok(())
}

pub(super) fn check_refs(ctx: &Ctx, files: &[PathBuf], allow_tag: bool) -> Result<()> {
    let allow = allow_tag || env_flag("ALLOW_TAG") || env_flag("DEV_MODE");
    let mut found = Vec::new();
    for f in files {
        let text = input::read_text(f, "manifest", input::MAX_MANIFEST_FILE)?;
        let unpinned = manifests::unpinned_images(&text)
            .map_err(|e| CliError::operational(format!("{}:{}: not valid YAML: {}", f.display(), e.line, e.message)))?;
        found.extend(unpinned.into_iter().map(|u| (f.display().to_string(), u)));
    }
    if ctx.json {
        let list: Vec<_> = found
            .iter()
            .map(|(f, u)| json!({"file": f, "line": u.line, "reference": u.reference, "why": u.why}))
            .collect();
        println!(
            "{}",
            json!({"ok": found.is_empty(), "allowed_by_dev_mode": allow && !found.is_empty(), "unpinned": list})
        );
    } else {
        let label = if allow { "warning: " } else { "" };
        for (f, u) in &found {
            eprintln!("{label}{f}:{}: {} ({})", u.line, u.reference, u.why);
        }
        if found.is_empty() {
            println!("ok: every image in {} file(s) is pinned to a digest", files.len());
        }
    }
    if found.is_empty() || allow {
        return Ok(());
    }
    if ctx.json {
        return Err(CliError::reported(Code::Denied));
    }
    Err(CliError::denied(format!("{} image reference(s) not pinned to a digest", found.len()))
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
    ctx.emit(serde_json::to_value(&r).expect("report serialises"), || {
        println!("{env}: current {}", r.current.as_deref().unwrap_or("(none)"));
        println!("{env}: rollback target {}", r.rollback_target.as_deref().unwrap_or("(none)"));
        for p in &r.promotions {
            println!(
                "  entry {:<5} {}  {}  from {}  by {}",
                p.index,
                p.recorded_at,
                p.digest,
                p.from.as_deref().unwrap_or("-"),
                audit::Signer::labels(&p.signers)
            );
        }
    });
    Ok(())
}

pub(super) fn log(ctx: &Ctx) -> Result<()> {
    let ledger = ctx.open()?;
    let policy = ledger.policy()?.1;
    let mut rows = Vec::new();
    let result = ledger.verify(None, |v| rows.push(v.clone()));
    if ctx.json {
        println!("{}", serde_json::Value::Array(rows.iter().map(|v| entry_json(&Shown::from(v), true)).collect()));
    } else {
        println!("{:>6}  {:<12}  {:<10}  {:<16}  SUBJECTS", "INDEX", "HASH", "KIND", "SIGNER");
        for v in &rows {
            let signer = v
                .signers()
                .iter()
                .map(|id| policy_name(&policy, id).unwrap_or_else(|| id.short()))
                .collect::<Vec<_>>()
                .join(",");
            let dev = if v.statement().predicate.is_dev_only() { " [dev-only]" } else { "" };
            println!(
                "{:>6}  {:<12}  {:<10}  {:<16}  {}{dev}",
                v.index(),
                &v.hash().to_string()[..12],
                kind(v.statement()),
                signer,
                subjects_json(v.statement()).join(" ")
            );
        }
    }
    result.map(|_| ()).map_err(CliError::from_verify)
}

pub(super) fn policy_name(policy: &provledger::policy::Policy, id: &provledger::core::keys::KeyId) -> Option<String> {
    policy.key(id).map(|k| format!("{} {}", k.name, id.short()))
}
