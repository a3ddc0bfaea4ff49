//! `serve` and `sync`: the ledger over the network.

use super::*;

pub(super) fn serve(ctx: &Ctx, listen: &str, config: server::Config) -> Result<()> {
    let ledger = ctx.open_writer()?;
    let cp = ledger.checkpoint()?;
    let listener =
        std::net::TcpListener::bind(listen).map_err(|e| CliError::operational(format!("--listen {listen}: {e}")))?;
    let addr = listener.local_addr().map_err(|e| CliError::operational(format!("--listen {listen}: {e}")))?;
    let url = server::describe(addr);
    // The first line names the address, for scripts that asked for port 0.
    ctx.emit(&Listening { listening: url.clone(), ledger: ctx.ledger_dir.clone(), size: cp.checkpoint.size });
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    if !ctx.json {
        eprintln!(
            "serving {} ({} entries); submissions are group-committed, at most {} per write",
            ctx.ledger_dir.display(),
            cp.checkpoint.size,
            config.max_batch
        );
    }
    server::run(ledger, listener, config).map_err(|e| CliError::operational(format!("server: {e}")))
}

/// A `sync` source: a server URL, an OCI repository, or a ledger directory.
pub(super) fn sync_source(ctx: &Ctx, from: &str) -> Result<Box<dyn sync::Source>> {
    if from.starts_with("http://") || from.starts_with("https://") {
        let client = Client::new(from, Duration::from_secs(60))?;
        return Ok(Box::new(sync::ServerSource(client)));
    }
    if let Some(rest) = from.strip_prefix("oci://") {
        let image = parse_ref(rest)?;
        return Ok(Box::new(sync::OciSource::open(ctx.registry()?, image)?));
    }
    Ok(Box::new(sync::DirSource::open(Path::new(from), ctx.lock_wait)?))
}

pub(super) fn sync_command(ctx: &Ctx, from: Option<&str>, to: Option<&str>, genesis: Option<&str>) -> Result<()> {
    let genesis =
        genesis.map(EntryHash::parse).transpose().map_err(|e| CliError::new(Code::Usage, format!("--genesis: {e}")))?;
    if let Some(to) = to {
        let Some(rest) = to.strip_prefix("oci://") else {
            return Err(CliError::new(Code::Usage, format!("--to {to}: expected oci://REGISTRY/REPO[:TAG]")));
        };
        let image = parse_ref(rest)?;
        let ledger = ctx.open()?;
        let dir = ctx.remote.as_ref().map_or_else(|| ctx.dir(), |r| ctx.mirror_dir(r));
        let report = sync::publish(&ledger, &ctx.registry()?, &image, &dir.evidence_dir())?;
        ctx.emit(&Published {
            ok: true,
            to: to.to_string(),
            manifest: report.manifest.to_string(),
            entries: report.size,
            blobs: report.blobs,
            pushed: report.pushed,
        });
        return Ok(());
    }
    let (dir, report) = match (from, &ctx.remote) {
        (None, None) => {
            return Err(CliError::new(Code::Usage, "sync needs --from URL|DIR|oci://… or --to oci://… (or --server)"));
        }
        (None, Some(r)) => {
            let ledger = ctx.mirror_dir(r).open_or_create()?;
            (r.mirror.clone(), ctx.pull_mirror(r, &ledger)?)
        }
        (Some(from), _) => {
            let mut source = sync_source(ctx, from)?;
            (ctx.ledger_dir.clone(), sync::pull_into_dir(&ctx.dir(), source.as_mut(), genesis.as_ref())?)
        }
    };
    ctx.emit(&Synced {
        ok: true,
        source: report.source.clone(),
        mirror: dir,
        from: report.from,
        to: report.to,
        fetched: report.to - report.from,
        source_behind: report.source_behind,
        checkpoint: CheckpointReport::from(&report.checkpoint),
    });
    Ok(())
}
