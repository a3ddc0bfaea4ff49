//! `serve`, `admit` and `sync`: the ledger over the network.

use super::*;
use std::sync::Arc;

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

pub(super) struct AdmitArgs {
    pub env: String,
    pub listen: String,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub exempt_namespaces: Vec<String>,
    pub warn_only: bool,
    pub refresh: Duration,
    pub genesis: Option<String>,
    /// `--mirror`: where the verified copy lives [default: a temporary directory].
    pub mirror: Option<PathBuf>,
}

/// `admit`: the webhook decides from a copy of the ledger of its own,
/// verified whole when it starts and then kept up to date from the local
/// ledger or `--server` (each new entry verified by the chain rules, the
/// checkpoints by consistency proofs). While the source cannot be read or
/// the copy verified, every review is denied, saying why.
pub(super) fn admit(ctx: &Ctx, a: AdmitArgs) -> Result<()> {
    use provledger::net::admit::{self, Decider};
    let tls = admit::tls_config(&a.tls_cert, &a.tls_key).map_err(CliError::operational)?;
    let pinned = match (&a.genesis, &ctx.remote) {
        (Some(g), _) => Some(EntryHash::parse(g).map_err(|e| CliError::new(Code::Usage, format!("--genesis: {e}")))?),
        (None, Some(r)) => r.genesis,
        // The local ledger is this host's own: its genesis is the one to keep to.
        (None, None) => {
            let local = ctx.dir().open()?;
            if local.policy()?.1.environment(&a.env).is_none() {
                return Err(CliError::operational(format!("--env {:?}: the policy names no such environment", a.env)));
            }
            local.genesis_hash()?
        }
    };
    let (dir, temporary) = match (&ctx.remote, a.mirror) {
        (Some(r), _) => (ctx.mirror_dir(r), None),
        (None, Some(m)) => (LedgerDir::new(m, ctx.lock_wait), None),
        (None, None) => {
            let t = TempDir::new("admit");
            (LedgerDir::new(&t.0, ctx.lock_wait), Some(t))
        }
    };
    let source: Box<dyn Fn() -> std::result::Result<Box<dyn sync::Source>, sync::SyncError> + Send> = match &ctx.remote
    {
        Some(r) => {
            let client = r.client.clone();
            Box::new(move || Ok(Box::new(sync::ServerSource(client.clone()))))
        }
        None => {
            let (path, wait) = (ctx.ledger_dir.clone(), ctx.lock_wait);
            Box::new(move || Ok(Box::new(sync::DirSource::open(&path, wait)?)))
        }
    };
    let mut copy =
        VerifiedCopy { ledger: dir.open_or_create()?, evidence: dir.evidence_dir(), pinned, promotions: None };
    let decider = Arc::new(Decider::new(admit::Policy {
        env: a.env.clone(),
        exempt_namespaces: a.exempt_namespaces,
        warn_only: a.warn_only,
    }));
    let first = copy.refresh(&*source);
    match &first {
        Ok(p) => decider.set(p.clone()),
        Err(why) => {
            eprintln!("provledger admit: denying every review: {why}");
            decider.fail(why.clone())
        }
    }
    let listener = std::net::TcpListener::bind(&a.listen)
        .map_err(|e| CliError::operational(format!("--listen {}: {e}", a.listen)))?;
    let addr = listener.local_addr().map_err(|e| CliError::operational(format!("--listen {}: {e}", a.listen)))?;
    ctx.emit(&Listening {
        listening: admit::describe(addr),
        ledger: dir.path().to_path_buf(),
        size: first.as_ref().map_or(0, |p| p.size()),
    });
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    {
        let decider = decider.clone();
        std::thread::Builder::new()
            .name("ledger refresh".into())
            .spawn(move || {
                let _temporary = temporary;
                loop {
                    std::thread::sleep(a.refresh);
                    match copy.refresh(&*source) {
                        Ok(p) => decider.set(p),
                        Err(why) => {
                            eprintln!("provledger admit: denying every review: {why}");
                            decider.fail(why)
                        }
                    }
                }
            })
            .map_err(|e| CliError::operational(format!("admit: {e}")))?;
    }
    // The API server is one peer with many reviews in flight.
    let limits = server::Config { max_connections_per_peer: server::MAX_CONNECTIONS, ..server::Config::default() };
    admit::serve(decider, listener, tls, &limits).map_err(|e| CliError::operational(format!("admit: {e}")))
}

/// A directory removed when dropped.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    /// A new name under the system's temporary directory, for `what`
    /// (nothing is created there yet).
    pub(super) fn new(what: &str) -> TempDir {
        let name = format!("provledger-{what}-{}-{:x}", std::process::id(), rand::random::<u32>());
        TempDir(std::env::temp_dir().join(name))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The webhook's copy of the ledger and the promotions it holds.
struct VerifiedCopy {
    ledger: Ledger<LedgerStore>,
    evidence: PathBuf,
    pinned: Option<EntryHash>,
    /// `None` until the copy has been verified whole (again after a failure).
    promotions: Option<provledger::promoted::Promotions>,
}

impl VerifiedCopy {
    /// Verifies the copy whole if it is not yet, pulls what the source has
    /// beyond it (verified), and takes in the new entries' promotions.
    fn refresh(
        &mut self,
        source: &dyn Fn() -> std::result::Result<Box<dyn sync::Source>, sync::SyncError>,
    ) -> std::result::Result<Arc<provledger::promoted::Promotions>, String> {
        let result = self.try_refresh(source);
        if result.is_err() {
            self.promotions = None;
        }
        result
    }

    fn try_refresh(
        &mut self,
        source: &dyn Fn() -> std::result::Result<Box<dyn sync::Source>, sync::SyncError>,
    ) -> std::result::Result<Arc<provledger::promoted::Promotions>, String> {
        use provledger::store::Store as _;
        if self.promotions.is_none() && self.ledger.store().head().map_err(|e| e.to_string())?.is_some() {
            let mut p = provledger::promoted::Promotions::new();
            self.ledger
                .verify(self.pinned.as_ref(), |v| p.record(v))
                .map_err(|e| format!("the webhook's copy of the ledger does not verify: {e}"))?;
            self.promotions = Some(p);
        }
        let genesis = match self.pinned {
            Some(g) => Some(g),
            None => self.ledger.genesis_hash().map_err(|e| e.to_string())?,
        };
        let mut from = source().map_err(|e| e.to_string())?;
        sync::pull(&self.ledger, &mut *from, genesis.as_ref(), &self.evidence).map_err(|e| e.to_string())?;
        drop(from);
        let p = self.promotions.get_or_insert_with(provledger::promoted::Promotions::new);
        let head = self.ledger.store().head().map_err(|e| e.to_string())?.map_or(0, |h| h.count);
        for i in p.size()..head {
            // Verified by the chain rules as the sync wrote it.
            let e = self.ledger.read(i).map_err(|e| e.to_string())?;
            p.record_stored(&e.entry, &e.statement);
        }
        Ok(Arc::new(p.clone()))
    }
}
