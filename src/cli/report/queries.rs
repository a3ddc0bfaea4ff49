//! The reports of `log`, `show`, `history`, `check-bundle` and `check-refs`.

use super::*;

/// `log`: every entry, with its envelope, as far as the chain verifies.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct LogReport {
    pub entries: Vec<EntryReport>,
    /// Each entry's signers as the policy names them, for people.
    #[serde(skip)]
    pub signer_labels: Vec<String>,
}

impl Report for LogReport {
    fn human(&self) {
        println!("{:>6}  {:<12}  {:<10}  {:<16}  SUBJECTS", "INDEX", "HASH", "KIND", "SIGNER");
        for (e, signer) in self.entries.iter().zip(&self.signer_labels) {
            let dev = if e.dev_only { " [dev-only]" } else { "" };
            println!(
                "{:>6}  {:<12}  {:<10}  {:<16}  {}{dev}",
                e.index,
                &e.hash[..12],
                e.kind.as_str(),
                signer,
                e.subjects.join(" ")
            );
        }
    }
}

/// `show`: everything the ledger records about one digest.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Shown(pub DigestReport);

impl Report for Shown {
    fn human(&self) {
        let r = &self.0;
        let who = Signer::labels;
        println!("{}", r.digest);
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
            println!(
                "  validated entry {:<5} {}  by {}  {}",
                v.index,
                v.recorded_at,
                who(&v.signers),
                checks.join(" ")
            );
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
    }
}

/// `history`: promotions into one environment, newest first.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct History(pub HistoryReport);

impl Report for History {
    fn human(&self) {
        let r = &self.0;
        let env = &r.environment;
        println!("{env}: current {}", r.current.as_deref().unwrap_or("(none)"));
        println!("{env}: rollback target {}", r.rollback_target.as_deref().unwrap_or("(none)"));
        for p in &r.promotions {
            println!(
                "  entry {:<5} {}  {}  from {}  by {}",
                p.index,
                p.recorded_at,
                p.digest,
                p.from.as_deref().unwrap_or("-"),
                Signer::labels(&p.signers)
            );
        }
    }
}

/// `check-bundle`: `ok` is false (exit 3) when a key is missing.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BundleChecked {
    pub ok: bool,
    pub file: PathBuf,
    /// The keys missing from the release metadata, as dotted paths.
    pub missing: Vec<String>,
}

impl Report for BundleChecked {
    fn human(&self) {
        if self.missing.is_empty() {
            println!("ok: {} is complete", self.file.display());
        }
    }
}

/// An image reference not pinned to a digest.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct UnpinnedRef {
    pub file: String,
    /// 1-based line.
    pub line: usize,
    pub reference: String,
    pub why: String,
}

impl UnpinnedRef {
    pub fn new(file: String, u: Unpinned) -> UnpinnedRef {
        UnpinnedRef { file, line: u.line, reference: u.reference, why: u.why }
    }
}

/// `check-refs`: `ok` is false when a reference is unpinned (exit 3, unless
/// allowed for development).
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RefsChecked {
    pub ok: bool,
    /// Unpinned references were found, and allowed (`--allow-tag`, `ALLOW_TAG`, `DEV_MODE`).
    pub allowed_by_dev_mode: bool,
    pub unpinned: Vec<UnpinnedRef>,
    /// `--env`: the environment every digest must have been promoted into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// `--env`: pinned references whose digest was not promoted into it, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unpromoted: Vec<UnpinnedRef>,
    #[serde(skip)]
    pub files: usize,
    #[serde(skip)]
    pub allowed: bool,
}

impl Report for RefsChecked {
    fn human(&self) {
        let label = if self.allowed { "warning: " } else { "" };
        for u in &self.unpinned {
            eprintln!("{label}{}:{}: {} ({})", u.file, u.line, u.reference, u.why);
        }
        for u in &self.unpromoted {
            eprintln!("{}:{}: {} ({})", u.file, u.line, u.reference, u.why);
        }
        match &self.env {
            Some(env) if self.ok => {
                println!("ok: every image in {} file(s) is pinned to a digest promoted into {env}", self.files)
            }
            None if self.unpinned.is_empty() => {
                println!("ok: every image in {} file(s) is pinned to a digest", self.files)
            }
            _ => {}
        }
    }
}
