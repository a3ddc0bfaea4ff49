//! `verify`, `export`, `checkpoint`, `prove`: the audit, and what it is done from offline.

use super::*;

pub(super) fn verify(ctx: &Ctx, genesis: Option<&str>, mode: sigcheck::Mode) -> Result<()> {
    let genesis =
        genesis.map(EntryHash::parse).transpose().map_err(|e| CliError::new(Code::Usage, format!("--genesis: {e}")))?;
    let ledger = ctx.open()?;
    // Sizes the bar only: verification itself reports a damaged checkpoint.
    let total = ledger.checkpoint().map_or(0, |c| c.checkpoint.size);
    let bar = progress::bar(ctx.json, total, "verifying");
    let report = ledger.verify_with(genesis.as_ref(), mode, |_| bar.inc(1));
    bar.finish_and_clear();
    let report = report.map_err(CliError::from_verify)?;
    let cp = ledger.checkpoint()?;
    ctx.emit(&Verified {
        ok: true,
        entries: report.entries,
        genesis: report.genesis.map(|g| g.to_string()).unwrap_or_default(),
        head: report.head.to_string(),
        checkpoint: CheckpointReport::from(&cp),
    });
    Ok(())
}

pub(super) fn parse_genesis(genesis: Option<&str>) -> Result<EntryHash> {
    let text = genesis.ok_or_else(|| CliError::new(Code::Usage, "--genesis HASH is required"))?;
    EntryHash::parse(text).map_err(|e| CliError::new(Code::Usage, format!("--genesis: {e}")))
}

/// A proof or checkpoint to verify: one beyond its limit fails verification (4).
pub(super) fn read_input(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>> {
    input::read_or(path, what, limit, Code::Verification)
}

/// Converts a local ledger to store version 3.
pub(super) fn migrate(ctx: &Ctx) -> Result<()> {
    if ctx.remote.is_some() {
        return Err(CliError::new(Code::Usage, "--server: migrate works on a local ledger, on the server's own host"));
    }
    let report = match ctx.dir().migrate()? {
        Some(m) => Migrated {
            ok: true,
            migrated: true,
            entries: m.entries,
            head: Some(m.head.to_string()),
            kept: Some(m.kept),
            store_version: 3,
        },
        None => Migrated { ok: true, migrated: false, entries: 0, head: None, kept: None, store_version: 3 },
    };
    ctx.emit(&report);
    Ok(())
}

/// Rebuilds the indexes of a local ledger from its chain.
pub(super) fn reindex(ctx: &Ctx) -> Result<()> {
    if ctx.remote.is_some() {
        return Err(CliError::new(Code::Usage, "--server: reindex works on a local ledger, on the server's own host"));
    }
    // Opened to append: no other writer runs while the indexes are rebuilt.
    let ledger = ctx.dir().open_writer(ctx.insecure_keys)?;
    let started = std::time::Instant::now();
    let Some(local) = ledger.store().local() else {
        return Err(CliError::operational(format!(
            "the ledger in {} writes its index rows in the same transactions as its entries: \
             there are no follower indexes to rebuild",
            ledger.store().describe()
        )));
    };
    let entries = local.reindex()?;
    let seconds = started.elapsed().as_secs_f64();
    ctx.emit(&Reindexed { ok: true, entries, seconds });
    Ok(())
}

pub(super) fn export(ctx: &Ctx, out: &Path) -> Result<()> {
    use provledger::audit::export::{ExportError, export_bundle};
    let ledger = ctx.open()?;
    let bar = progress::bar(ctx.json, ledger.checkpoint()?.checkpoint.size, "exporting");
    // The helper takes an I/O error from the writer; any other refusal is
    // kept aside and reported as what it is.
    let mut refused = None;
    let mut written = None;
    write_atomically(out, |w| match export_bundle(&ledger, w, || bar.inc(1)) {
        Ok(cp) => {
            written = Some(cp);
            Ok(())
        }
        Err(ExportError::Io(e)) => Err(e),
        Err(other) => {
            let io = std::io::Error::other(other.to_string());
            refused = Some(other);
            Err(io)
        }
    })
    .map_err(|e| match refused.take() {
        Some(ExportError::Mismatch(m)) => {
            CliError::new(Code::Verification, format!("export refused: {m}")).hint("run `provledger verify`")
        }
        Some(ExportError::Ledger(l)) => l.into(),
        _ => e,
    })?;
    bar.finish_and_clear();
    let cp = written.expect("written when the write succeeded");
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    ctx.emit(&Exported {
        ok: true,
        out: out.to_path_buf(),
        entries: cp.checkpoint.size,
        bytes,
        checkpoint: CheckpointReport::from(&cp),
    });
    Ok(())
}

pub(super) fn bundle_failure(e: bundle::BundleError) -> CliError {
    match e {
        bundle::BundleError::Verify(v) => error::verify_failure(v),
        bundle::BundleError::NewerVersion(_) | bundle::BundleError::Io(_) => CliError::operational(e.to_string()),
        other => CliError::new(Code::Verification, format!("verification failed: {other}")),
    }
}

pub(super) fn verify_bundle(
    ctx: &Ctx,
    path: &Path,
    genesis: Option<&str>,
    since: Option<&Path>,
    mode: sigcheck::Mode,
) -> Result<()> {
    let genesis = parse_genesis(genesis)?;
    let since = since
        .map(|p| read_input(p, "checkpoint", provledger::core::note::MAX_NOTE_SIZE as u64))
        .transpose()?
        .map(|b| {
            String::from_utf8(b).map_err(|_| CliError::new(Code::Verification, "--since: the checkpoint is not UTF-8"))
        })
        .transpose()?;
    let file =
        std::fs::File::open(path).map_err(|e| CliError::operational(format!("bundle {}: {e}", path.display())))?;
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    // The count in the header sizes the bar; verification does not trust it.
    let total = bundle::BundleReader::open(std::io::BufReader::new(
        std::fs::File::open(path).map_err(|e| CliError::operational(format!("bundle {}: {e}", path.display())))?,
    ))
    .map(|r| r.count)
    .unwrap_or(0);
    let bar = progress::bar(ctx.json, total, "verifying");
    let report = bundle::verify_bundle_with(reader, &genesis, since.as_deref(), mode, |_| bar.inc(1));
    bar.finish_and_clear();
    let report = report.map_err(bundle_failure)?;
    ctx.emit(&BundleVerified {
        ok: true,
        entries: report.chain.entries,
        genesis: genesis.to_string(),
        head: report.chain.head.to_string(),
        checkpoint: CheckpointReport::from(&report.checkpoint),
        since: report.since.as_ref().map(CheckpointReport::from),
    });
    Ok(())
}

pub(super) fn prove(ctx: &Ctx, text: &str, env: &str, out: &Path) -> Result<()> {
    let digest = parse_digest(text)?;
    let ledger = ctx.open()?;
    let proof = proof::prove(&ledger, &digest, env).map_err(|e| match e {
        proof::ProveError::NotPromoted { .. } => CliError::denied(e.to_string()),
        proof::ProveError::Ledger(l) => l.into(),
        other => CliError::operational(other.to_string()),
    })?;
    let text = proof.to_json();
    write_atomically(out, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    ctx.emit(&Proven {
        ok: true,
        out: out.to_path_buf(),
        digest: digest.to_string(),
        environment: env.to_string(),
        promotion: proof.promotion,
        entries: proof.entries.len(),
        bytes: text.len(),
    });
    Ok(())
}

pub(super) fn verify_proof(ctx: &Ctx, path: &Path, genesis: Option<&str>) -> Result<()> {
    let genesis = parse_genesis(genesis)?;
    let bytes = read_input(path, "proof", proof::MAX_PROOF_SIZE as u64)?;
    let report = PromotionProof::parse(&bytes).and_then(|p| p.verify(&genesis)).map_err(|e| match e {
        proof::ProofError::Verify(v) => error::verify_failure(v),
        proof::ProofError::NewerVersion(_) => CliError::operational(e.to_string()),
        other => CliError::new(Code::Verification, format!("verification failed: {other}")),
    })?;
    ctx.emit(&ProofVerified {
        ok: true,
        digest: report.digest.to_string(),
        environment: report.environment.clone(),
        promotion: EntryId::from(&report.promotion),
        from: report.from.clone(),
        build: EntryId::from(&report.build),
        validations: report.validations.iter().map(EntryId::from).collect(),
        checkpoint: CheckpointReport::from(&report.checkpoint),
    });
    Ok(())
}

pub(super) fn checkpoint(ctx: &Ctx, out: Option<&Path>) -> Result<()> {
    let ledger = ctx.open()?;
    let cp = ledger.checkpoint()?;
    if let Some(path) = out {
        write_atomically(path, |w| std::io::Write::write_all(w, cp.note.as_bytes()))?;
    }
    ctx.emit(&CheckpointShown { checkpoint: CheckpointReport::from(&cp), out: out.map(Path::to_path_buf) });
    Ok(())
}

/// Verifies the ledger (or a bundle, loaded into a temporary copy as a
/// mirror is filled: every entry verified as it is taken in), then writes
/// the audit view into `out`. A failed verification writes a report that
/// says so on every page and shows nothing from the ledger, then exits 4.
pub(super) fn report(ctx: &Ctx, out: &Path, bundle_path: Option<&Path>, genesis: Option<&str>) -> Result<()> {
    use provledger::audit::site::{self, Catalog, Trust, Verification};
    let genesis =
        genesis.map(EntryHash::parse).transpose().map_err(|e| CliError::new(Code::Usage, format!("--genesis: {e}")))?;
    let mut catalog = Catalog::default();
    let mut _temporary = None;
    let (ledger, source) = match bundle_path {
        Some(b) => {
            let genesis = genesis.as_ref().expect("clap requires --genesis with --bundle");
            let bundle = sync::BundleSource::open(b).map_err(|e| match e {
                sync::SyncError::Invalid(m) => CliError::new(Code::Verification, format!("verification failed: {m}")),
                other => other.into(),
            });
            let temporary = network::TempDir::new("report");
            let dir = LedgerDir::new(&temporary.0, ctx.lock_wait);
            _temporary = Some(temporary);
            let copy = dir.open_or_create()?;
            let source = format!("bundle {}", b.display());
            let loaded = bundle.and_then(|mut s| {
                sync::pull(&copy, &mut s, Some(genesis), &dir.evidence_dir()).map(|_| ()).map_err(CliError::from)
            });
            if let Err(e) = loaded {
                return failed_report(out, Some(&copy), &source, e);
            }
            (copy, source)
        }
        None => {
            let source = match &ctx.remote {
                Some(r) => format!("the mirror of {}", r.client.url()),
                None => format!("ledger {}", ctx.ledger_dir.display()),
            };
            match ctx.open() {
                Ok(l) => (l, source),
                Err(e) if e.code == Code::Verification => return failed_report(out, None, &source, e),
                Err(e) => return Err(e),
            }
        }
    };
    let total = ledger.checkpoint().map_or(0, |c| c.checkpoint.size);
    let bar = progress::bar(ctx.json, total, "verifying");
    let verified = ledger.verify(genesis.as_ref(), |v| {
        catalog.take_verified(v);
        bar.inc(1)
    });
    bar.finish_and_clear();
    let chain = match verified {
        Ok(c) => c,
        Err(e) => return failed_report(out, Some(&ledger), &source, CliError::from_verify(e)),
    };
    let cp = ledger.checkpoint()?;
    let trust = Trust::Verified(Verification {
        source,
        scope: "the whole chain".into(),
        genesis: chain.genesis.map(|g| g.to_string()).unwrap_or_default(),
        entries: chain.entries,
        head: chain.head.to_string(),
        checkpoint: (&cp).into(),
        verified_at: site::now_rfc3339(),
        genesis_pinned: genesis.is_some(),
    });
    let pages = write_report(out, Some(&ledger), &catalog, &trust)?;
    ctx.emit(&ReportWritten {
        ok: true,
        out: out.to_path_buf(),
        pages,
        entries: chain.entries,
        genesis: chain.genesis.map(|g| g.to_string()).unwrap_or_default(),
        checkpoint: CheckpointReport::from(&cp),
    });
    Ok(())
}

/// Writes the report of a failed verification (of `ledger`, or of one that
/// could not be opened), then fails with `e`.
fn failed_report(out: &Path, ledger: Option<&Ledger<LedgerStore>>, source: &str, e: CliError) -> Result<()> {
    use provledger::audit::site::{Failure, Trust};
    let trust = Trust::Failed(Failure::new(source, e.message.clone(), e.index, e.rule));
    write_report(out, ledger, &provledger::audit::site::Catalog::default(), &trust)?;
    Err(e)
}

fn write_report(
    out: &Path,
    ledger: Option<&Ledger<LedgerStore>>,
    catalog: &provledger::audit::site::Catalog,
    trust: &provledger::audit::site::Trust,
) -> Result<usize> {
    use provledger::audit::site::{self, WriteError};
    site::write_static(ledger, catalog, trust, out).map_err(|e| match e {
        WriteError::NotAReport(_) => CliError::new(Code::Usage, e.to_string()),
        WriteError::Ledger(l) => l.into(),
        WriteError::Io { .. } => CliError::operational(e.to_string()),
    })
}
