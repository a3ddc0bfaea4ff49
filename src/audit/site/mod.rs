//! The audit view: the ledger as web pages, written as a static report
//! (`provledger report`) or served live under `/ui/` (`provledger serve`).
//!
//! The pages are built in two steps. [`Catalog`] takes in every entry as
//! verification walks the chain (and, on a server, every entry appended
//! since); it keeps only what no index answers: the digests and releases in
//! order, the recent entries, the dev-only records. Each page is then read
//! through the indexes ([`crate::audit::show`], [`crate::audit::history`],
//! the policy entries, the release index) into a typed page (the JSON form,
//! linked from every page) and rendered to HTML ([`html`]).
//!
//! What the pages may show is decided by [`Trust`]: only a verified chain
//! is shown. A ledger that failed verification (or a server that has not yet
//! verified its own) gets the same pages, each saying so, with nothing read
//! from the ledger in them.

mod html;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde::Serialize;

use crate::audit::{DigestReport, HistoryReport, PromotionInfo, Signer, key_names, signers_of};
use crate::core::digest::Digest;
use crate::core::entry::UnverifiedEntry;
use crate::core::keys::KeyId;
use crate::core::statement::{CheckResult, PolicyPredicate, Predicate, Role, Statement, rfc3339};
use crate::gate::{self, Decision};
use crate::ledger::{Ledger, LedgerError};
use crate::store::Store;
use crate::verify::VerifiedEntry;

pub use html::{STYLESHEET, render};

/// Entries the overview lists as recent activity.
pub const RECENT: usize = 20;
/// The path under which `provledger serve` serves the pages.
pub const UI_PREFIX: &str = "/ui";

/// What the pages may say about the ledger.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Trust {
    /// The chain verified: the pages show it.
    Verified(Verification),
    /// Verification failed: the pages say so and show nothing from the ledger.
    Failed(Failure),
    /// A server still verifying its chain: nothing is shown yet.
    Pending { source: String, since: String },
}

impl Trust {
    pub fn is_verified(&self) -> bool {
        matches!(self, Trust::Verified(_))
    }
}

/// A verification that passed.
#[derive(Clone, Debug, Serialize)]
pub struct Verification {
    /// What was verified: the ledger directory, the bundle, or the server's store.
    pub source: String,
    /// How: "the whole chain", or for a server what it verified when.
    pub scope: String,
    /// The genesis entry hash the chain verified from.
    pub genesis: String,
    /// Entries verified (the tree size), and the last one's hash.
    pub entries: u64,
    pub head: String,
    /// The signed checkpoint the chain was checked against.
    pub checkpoint: CheckpointView,
    /// When the verification ran (RFC 3339, UTC).
    pub verified_at: String,
    /// Whether the genesis was checked against one given (`--genesis`);
    /// otherwise it is the ledger's own, to compare with the one you trust.
    pub genesis_pinned: bool,
}

/// A signed checkpoint, as the pages show it.
#[derive(Clone, Debug, Serialize)]
pub struct CheckpointView {
    pub origin: String,
    pub size: u64,
    /// The Merkle root, standard base64.
    pub root: String,
    /// The log key that signed it (`origin+keyid+base64`).
    pub signer: String,
}

impl From<&crate::checkpoint::SignedCheckpoint> for CheckpointView {
    fn from(cp: &crate::checkpoint::SignedCheckpoint) -> CheckpointView {
        CheckpointView {
            origin: cp.checkpoint.origin.clone(),
            size: cp.checkpoint.size,
            root: crate::core::b64::encode(cp.checkpoint.root),
            signer: cp.verifier.to_text(),
        }
    }
}

/// A verification that failed.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub source: String,
    pub message: String,
    /// The first bad entry, when one is named.
    pub index: Option<u64>,
    /// The chain rule broken (SPEC section 6.2), when known.
    pub rule: Option<String>,
    pub verified_at: String,
}

impl Failure {
    pub fn new(source: &str, message: impl Into<String>, index: Option<u64>, rule: Option<&str>) -> Failure {
        Failure {
            source: source.to_string(),
            message: message.into(),
            index,
            rule: rule.map(str::to_string),
            verified_at: now_rfc3339(),
        }
    }

    pub fn of(source: &str, e: &LedgerError) -> Failure {
        match e {
            LedgerError::Verify(v) => Failure::new(source, v.reason.clone(), Some(v.index), Some(v.code.as_str())),
            other => Failure::new(source, other.to_string(), None, None),
        }
    }
}

pub fn now_rfc3339() -> String {
    rfc3339(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

// ---------------------------------------------------------------- catalog

/// One entry, as the recent activity lists it.
#[derive(Clone, Debug, Serialize)]
pub struct Activity {
    pub index: u64,
    pub hash: String,
    pub recorded_at: String,
    pub kind: &'static str,
    /// The first subject's digest, if it has one.
    pub digest: Option<String>,
    /// What the entry says, in a few words.
    pub summary: String,
    #[serde(skip)]
    signer_ids: Vec<String>,
    /// Filled in when the page is read (names from every policy).
    pub signers: Vec<Signer>,
}

/// A dev-only (tag-only) record: it never counts toward a gate.
#[derive(Clone, Debug, Serialize)]
pub struct DevOnlyRecord {
    pub index: u64,
    pub kind: &'static str,
    /// The tag-only subject name, `REPO:TAG`.
    pub subject: String,
}

#[derive(Clone, Debug)]
struct DigestSeen {
    first: u64,
    image: Option<String>,
    promoted: Vec<String>,
}

/// What the pages need beyond the indexes, taken in entry by entry.
#[derive(Debug, Default)]
pub struct Catalog {
    size: u64,
    order: Vec<Digest>,
    digests: HashMap<Digest, DigestSeen>,
    releases: BTreeSet<String>,
    recent: VecDeque<Activity>,
    /// Dev-only records by repository.
    dev_only: HashMap<String, Vec<DevOnlyRecord>>,
}

/// An entry's kind: the role its statement needs, by name.
fn kind_of(s: &Statement) -> &'static str {
    s.predicate.role().as_str()
}

/// The repository of an image reference: without `@digest` and `:tag`.
pub fn repository(image: &str) -> &str {
    let name = image.split_once('@').map_or(image, |(n, _)| n);
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    }
}

fn summary(s: &Statement) -> String {
    match &s.predicate {
        Predicate::Build(b) => {
            let ext = &b.build_definition.external_parameters;
            let mut out = format!("built {}", repository(&ext.image));
            if let Some(t) = &ext.tag {
                out.push_str(&format!(":{t}"));
            }
            if let Some(a) = &ext.artifact {
                out.push_str(&format!(" ({a})"));
            }
            if let Some(sha) = b.git_commit() {
                out.push_str(&format!(" from {}", &sha[..sha.len().min(12)]));
            }
            if let Some(r) = &ext.release {
                out.push_str(&format!(" (release {r})"));
            }
            out
        }
        Predicate::Validation(v) => {
            let checks: Vec<String> = v.checks.iter().map(|c| format!("{}={}", c.name, result_str(c.result))).collect();
            format!("validated {}", checks.join(" "))
        }
        Predicate::Promotion(p) => match &p.from {
            Some(f) => format!("promoted {f} → {}", p.to),
            None => format!("promoted to {}", p.to),
        },
        Predicate::Policy(p) => format!("policy: {} keys, {} environments", p.keys.len(), p.environments.len()),
    }
}

pub fn result_str(r: CheckResult) -> &'static str {
    match r {
        CheckResult::Pass => "pass",
        CheckResult::Fail => "fail",
    }
}

impl Catalog {
    /// Entries taken in.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Takes in the next entry of a verified chain.
    pub fn take_verified(&mut self, v: &VerifiedEntry) {
        self.take(v.index(), v.entry(), v.statement(), v.signers().iter().map(KeyId::to_string).collect());
    }

    fn take(&mut self, index: u64, entry: &UnverifiedEntry, s: &Statement, signer_ids: Vec<String>) {
        debug_assert_eq!(index, self.size);
        self.size = index + 1;
        // A policy statement's subject is the policy document, not an image.
        let digests = if matches!(s.predicate, Predicate::Policy(_)) { Vec::new() } else { s.subject_digests() };
        for d in &digests {
            let seen = self.digests.entry(*d).or_insert_with(|| {
                self.order.push(*d);
                DigestSeen { first: index, image: None, promoted: Vec::new() }
            });
            match &s.predicate {
                Predicate::Build(b) if seen.image.is_none() => {
                    seen.image = Some(b.build_definition.external_parameters.image.clone())
                }
                Predicate::Promotion(p) if !seen.promoted.contains(&p.to) => seen.promoted.push(p.to.clone()),
                _ => {}
            }
        }
        if let Predicate::Build(b) = &s.predicate
            && let Some(r) = &b.build_definition.external_parameters.release
        {
            self.releases.insert(r.clone());
        }
        if s.predicate.is_dev_only() {
            for subject in s.subjects.iter().filter(|sub| !matches!(sub.sha256(), Ok(Some(_)))) {
                self.dev_only.entry(repository(&subject.name).to_string()).or_default().push(DevOnlyRecord {
                    index,
                    kind: kind_of(s),
                    subject: subject.name.clone(),
                });
            }
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(Activity {
            index,
            hash: entry.hash().to_string(),
            recorded_at: rfc3339(entry.integrated_time),
            kind: kind_of(s),
            digest: digests.first().map(Digest::to_string),
            summary: summary(s),
            signer_ids,
            signers: Vec::new(),
        });
    }

    /// Takes in the entries `ledger` holds beyond the catalog. Each was
    /// verified when it was appended (a server verifies every statement
    /// before it writes it).
    /// A store that now holds fewer entries, or entries that do not link to
    /// the last one taken in, fails verification.
    pub fn catch_up<S: Store>(&mut self, ledger: &Ledger<S>) -> Result<(), LedgerError> {
        use crate::verify::{Failure, VerifyError};
        let count = ledger.store().head()?.map_or(0, |h| h.count);
        if count < self.size {
            let why = format!("the store went back: it holds {count} entries, {} were verified", self.size);
            return Err(VerifyError::new(count, Failure::Invalid, why).into());
        }
        while self.size < count {
            let e = ledger.read(self.size)?;
            if let Some(head) = self.head()
                && e.entry.prev_hash.to_string() != head
            {
                let why = format!("entry {} does not link to the verified entry before it", self.size);
                return Err(VerifyError::new(self.size, Failure::Invalid, why).into());
            }
            let ids = e.entry.envelope.signatures.iter().map(|s| s.keyid.clone()).collect();
            self.take(self.size, &e.entry, &e.statement, ids);
        }
        Ok(())
    }

    /// The hash of the newest entry taken in.
    pub fn head(&self) -> Option<&str> {
        self.recent.back().map(|a| a.hash.as_str())
    }

    pub fn digests(&self) -> impl Iterator<Item = &Digest> {
        self.order.iter()
    }

    pub fn releases(&self) -> impl Iterator<Item = &String> {
        self.releases.iter()
    }

    pub fn knows(&self, d: &Digest) -> bool {
        self.digests.contains_key(d)
    }
}

// ---------------------------------------------------------------- pages

/// A page of the view. Its path is the same in the static report and under
/// `/ui/`, so that relative links work in both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Page {
    Overview,
    Digests,
    Digest(Digest),
    Releases,
    Release(String),
    Environment(String),
    Policy,
}

/// A name as a file name: itself when it is a plain name (what the policy
/// allows environments), else `_` (which no plain name starts with) and
/// its bytes in hex.
fn file_name(name: &str) -> String {
    if crate::core::statement::check_name("page", name).is_ok() {
        name.to_string()
    } else {
        format!("_{}", hex::encode(name))
    }
}

fn from_file_name(stem: &str) -> Option<String> {
    match stem.strip_prefix('_') {
        Some(h) => String::from_utf8(hex::decode(h).ok()?).ok(),
        None => crate::core::statement::check_name("page", stem).is_ok().then(|| stem.to_string()),
    }
}

impl Page {
    /// The page's path, without extension, relative to the site's root.
    pub fn stem(&self) -> String {
        match self {
            Page::Overview => "index".into(),
            Page::Digests => "digests".into(),
            Page::Digest(d) => format!("digests/sha256-{}", d.hex()),
            Page::Releases => "releases".into(),
            Page::Release(r) => format!("releases/{}", file_name(r)),
            Page::Environment(e) => format!("environments/{}", file_name(e)),
            Page::Policy => "policy".into(),
        }
    }

    /// Reads a path relative to the site's root: the page, and whether its
    /// JSON form is asked for.
    pub fn parse(path: &str) -> Option<(Page, bool)> {
        let path = if path.is_empty() || path.ends_with('/') { format!("{path}index.html") } else { path.to_string() };
        let (stem, json) = match (path.strip_suffix(".html"), path.strip_suffix(".json")) {
            (Some(s), _) => (s, false),
            (_, Some(s)) => (s, true),
            _ => return None,
        };
        let page = match stem.split_once('/') {
            None if stem == "index" => Page::Overview,
            None if stem == "policy" => Page::Policy,
            None if stem == "digests" => Page::Digests,
            None if stem == "releases" => Page::Releases,
            Some(("digests", d)) => Page::Digest(format!("sha256:{}", d.strip_prefix("sha256-")?).parse().ok()?),
            Some(("releases", r)) => Page::Release(from_file_name(r)?),
            Some(("environments", e)) => Page::Environment(from_file_name(e)?),
            _ => return None,
        };
        // One path per page: a name spelled two ways is no page.
        (page.stem() == stem).then_some((page, json))
    }

    fn depth(&self) -> usize {
        self.stem().matches('/').count()
    }

    /// The link from this page to `to` (`.html` or `.json`).
    pub fn link(&self, to: &Page, ext: &str) -> String {
        format!("{}{}.{ext}", "../".repeat(self.depth()), to.stem())
    }

    /// The link from this page to a file at the site's root.
    pub fn root_link(&self, file: &str) -> String {
        format!("{}{file}", "../".repeat(self.depth()))
    }

    /// The pages that exist whatever the ledger holds.
    pub fn fixed() -> [Page; 4] {
        [Page::Overview, Page::Digests, Page::Releases, Page::Policy]
    }
}

/// The view of one environment on the overview.
#[derive(Clone, Debug, Serialize)]
pub struct EnvironmentSummary {
    pub name: String,
    pub requires: Option<String>,
    pub required_checks: Vec<String>,
    pub current: Option<String>,
    pub rollback_target: Option<String>,
    pub last_promotion: Option<PromotionInfo>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Overview {
    pub environments: Vec<EnvironmentSummary>,
    /// The newest entries, newest first.
    pub recent: Vec<Activity>,
    pub digests: usize,
    pub releases: usize,
}

/// A digest in the list of digests.
#[derive(Clone, Debug, Serialize)]
pub struct DigestRow {
    pub digest: String,
    pub image: Option<String>,
    pub first_entry: u64,
    /// Environments it was promoted into, in order.
    pub promoted_to: Vec<String>,
}

/// A check outcome that a newer validation of the same check replaced.
#[derive(Clone, Debug, Serialize)]
pub struct Superseded {
    pub check: String,
    pub result: &'static str,
    pub index: u64,
    pub by_result: &'static str,
    pub by_index: u64,
}

/// Where a digest stands with each environment's gate today.
#[derive(Clone, Debug, Serialize)]
pub struct GateStanding {
    pub environment: String,
    /// The promotion into the environment, if there was one.
    pub promoted: Option<u64>,
    /// Whether the gate would allow a promotion now.
    pub allowed: bool,
    /// Every reason the gate denies it.
    pub reasons: Vec<String>,
}

/// A policy change after the digest's first entry.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyChangeNote {
    pub index: u64,
    pub signers: Vec<Signer>,
    /// Whether the change touched a check the digest was validated for or is
    /// required of it.
    pub touches_its_checks: bool,
    pub changes: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DigestPage {
    pub report: DigestReport,
    pub gates: Vec<GateStanding>,
    pub superseded: Vec<Superseded>,
    pub dev_only: Vec<DevOnlyRecord>,
    pub policy_changes: Vec<PolicyChangeNote>,
}

/// One build of a release, and where its digest went.
#[derive(Clone, Debug, Serialize)]
pub struct ReleaseArtifact {
    pub artifact: String,
    pub index: u64,
    pub digest: Option<String>,
    pub revision: Option<String>,
    pub dev_only: bool,
    pub promoted_to: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReleasePage {
    pub release: String,
    pub builds: Vec<ReleaseArtifact>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReleaseRow {
    pub release: String,
    pub builds: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct EnvironmentPage {
    /// As the policy in force defines it; `None` for an environment only
    /// older policies named.
    pub in_policy: bool,
    pub requires: Option<String>,
    pub required_checks: Vec<String>,
    pub tags: Vec<String>,
    pub history: HistoryReport,
}

#[derive(Clone, Debug, Serialize)]
pub struct PolicyKeyView {
    pub name: String,
    pub id: String,
    pub roles: Vec<&'static str>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PolicyEnvironmentView {
    pub name: String,
    pub requires: Option<String>,
    pub required_checks: Vec<String>,
    pub tags: Vec<String>,
}

/// One policy the chain has had.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyVersion {
    pub index: u64,
    pub hash: String,
    pub recorded_at: String,
    pub signers: Vec<Signer>,
    pub policy_threshold: u32,
    pub log_key: String,
    pub keys: Vec<PolicyKeyView>,
    pub environments: Vec<PolicyEnvironmentView>,
    /// What changed from the policy before (for the genesis: "the first policy").
    pub changes: Vec<String>,
    #[serde(skip)]
    touched_checks: BTreeSet<String>,
}

/// A page's content, its JSON form beside `verification`.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Content {
    Overview(Overview),
    Digests { digests: Vec<DigestRow> },
    Digest(Box<DigestPage>),
    Releases { releases: Vec<ReleaseRow> },
    Release(ReleasePage),
    Environment(EnvironmentPage),
    Policy { policies: Vec<PolicyVersion> },
}

/// A page, ready to render: what is shown, and under which trust.
#[derive(Clone, Debug, Serialize)]
pub struct PageData {
    #[serde(skip)]
    pub page: Page,
    pub verification: Trust,
    /// `None` unless the chain verified.
    #[serde(flatten)]
    pub content: Option<Content>,
}

impl PageData {
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("page data serializes");
        s.push('\n');
        s
    }
}

/// Reads `page` from a verified `ledger`. `None` for a page that does not
/// exist (a digest or release the ledger never recorded, an environment no
/// policy named). Under any trust but [`Trust::Verified`], the fixed pages
/// exist and show nothing from the ledger.
pub fn page_data<S: Store>(
    ledger: &Ledger<S>,
    catalog: &Catalog,
    trust: &Trust,
    page: &Page,
) -> Result<Option<PageData>, LedgerError> {
    if !trust.is_verified() {
        return Ok(unverified_page(trust, page));
    }
    let content = match page {
        Page::Overview => Some(Content::Overview(overview(ledger, catalog)?)),
        Page::Digests => Some(Content::Digests {
            digests: catalog
                .order
                .iter()
                .map(|d| {
                    let seen = &catalog.digests[d];
                    DigestRow {
                        digest: d.to_string(),
                        image: seen.image.clone(),
                        first_entry: seen.first,
                        promoted_to: seen.promoted.clone(),
                    }
                })
                .collect(),
        }),
        Page::Digest(d) => digest_page(ledger, catalog, d)?.map(|p| Content::Digest(Box::new(p))),
        Page::Releases => {
            let mut releases = Vec::new();
            for r in &catalog.releases {
                releases.push(ReleaseRow { release: r.clone(), builds: ledger.release_builds(r)?.len() });
            }
            Some(Content::Releases { releases })
        }
        Page::Release(r) => release_page(ledger, catalog, r)?.map(Content::Release),
        Page::Environment(e) => environment_page(ledger, e)?.map(Content::Environment),
        Page::Policy => Some(Content::Policy { policies: policy_versions(ledger)? }),
    };
    Ok(content.map(|c| PageData { page: page.clone(), verification: trust.clone(), content: Some(c) }))
}

/// A page under a trust that shows nothing: the fixed pages exist, each
/// saying why it is empty.
pub fn unverified_page(trust: &Trust, page: &Page) -> Option<PageData> {
    let known = Page::fixed().contains(page);
    known.then(|| PageData { page: page.clone(), verification: trust.clone(), content: None })
}

/// Every page of a verified ledger, for the static report: the fixed pages,
/// then a page per environment, release and digest.
pub fn pages<S: Store>(ledger: &Ledger<S>, catalog: &Catalog, trust: &Trust) -> Result<Vec<Page>, LedgerError> {
    let mut out: Vec<Page> = Page::fixed().into();
    if !trust.is_verified() {
        return Ok(out);
    }
    out.extend(environment_names(ledger)?.into_iter().map(Page::Environment));
    out.extend(catalog.releases.iter().cloned().map(Page::Release));
    out.extend(catalog.order.iter().copied().map(Page::Digest));
    Ok(out)
}

/// The environments of the policy in force, in its order, then those only
/// older policies named.
fn environment_names<S: Store>(ledger: &Ledger<S>) -> Result<Vec<String>, LedgerError> {
    let (_, policy) = ledger.policy()?;
    let mut names: Vec<String> = policy.environments().iter().map(|e| e.name.clone()).collect();
    for v in policy_predicates(ledger)? {
        for e in v.1.environments {
            if !names.contains(&e.name) {
                names.push(e.name);
            }
        }
    }
    Ok(names)
}

fn overview<S: Store>(ledger: &Ledger<S>, catalog: &Catalog) -> Result<Overview, LedgerError> {
    let (_, policy) = ledger.policy()?;
    let mut environments = Vec::new();
    for env in policy.environments() {
        let h = crate::audit::history(ledger, &env.name)?;
        environments.push(EnvironmentSummary {
            name: env.name.clone(),
            requires: env.requires.clone(),
            required_checks: env.required_checks.clone(),
            current: h.current,
            rollback_target: h.rollback_target,
            last_promotion: h.promotions.into_iter().next(),
        });
    }
    let names = key_names(ledger)?;
    let recent = catalog
        .recent
        .iter()
        .rev()
        .map(|a| Activity { signers: signers_of(&a.signer_ids, &names), ..a.clone() })
        .collect();
    Ok(Overview { environments, recent, digests: catalog.order.len(), releases: catalog.releases.len() })
}

fn digest_page<S: Store>(ledger: &Ledger<S>, catalog: &Catalog, d: &Digest) -> Result<Option<DigestPage>, LedgerError> {
    let Some(report) = crate::audit::show(ledger, d)? else { return Ok(None) };
    let (_, policy) = ledger.policy()?;

    // Superseded outcomes: for each check, every counted outcome but the newest.
    let mut superseded = Vec::new();
    let mut newest: BTreeMap<&str, (CheckResult, u64)> = BTreeMap::new();
    for v in report.validations.iter().filter(|v| !v.dev_only) {
        for c in &v.checks {
            if let Some((r, i)) = newest.insert(&c.name, (c.result, v.index)) {
                superseded.push(Superseded {
                    check: c.name.clone(),
                    result: result_str(r),
                    index: i,
                    by_result: result_str(c.result),
                    by_index: v.index,
                });
            }
        }
    }

    // Where the digest stands with each gate, as a promoter of the policy in force would find it.
    let promoter = policy.keys().find(|(_, k)| k.roles.contains(&Role::Promotion)).map(|(id, _)| *id);
    let evidence = ledger.evidence_for(d)?;
    let mut gates = Vec::new();
    for env in policy.environments() {
        let promoted = report.promotions.iter().filter(|p| p.to == env.name).map(|p| p.index).next_back();
        let (allowed, reasons) = match promoter {
            None => (false, vec!["no key in the policy in force holds the promotion role".to_string()]),
            Some(promoter) => {
                let request = gate::Request { digest: Some(*d), to: &env.name, promoter, tag: None };
                match gate::decide(&policy, &evidence, &request) {
                    Decision::Allow(_) => (true, Vec::new()),
                    Decision::Deny(r) => (false, r),
                }
            }
        };
        gates.push(GateStanding { environment: env.name.clone(), promoted, allowed, reasons });
    }

    // Dev-only records of the same repository.
    let mut dev_only = Vec::new();
    let mut repos: Vec<&str> = report.builds.iter().map(|b| repository(&b.image)).collect();
    repos.dedup();
    for r in repos {
        dev_only.extend(catalog.dev_only.get(r).into_iter().flatten().cloned());
    }
    dev_only.sort_by_key(|r| r.index);
    dev_only.dedup_by_key(|r| r.index);

    // Policy changes after its first entry, and whether they touched its checks.
    let mut its_checks: BTreeSet<String> =
        report.validations.iter().flat_map(|v| v.checks.iter().map(|c| c.name.clone())).collect();
    its_checks.extend(policy.environments().iter().flat_map(|e| e.required_checks.iter().cloned()));
    let first = catalog.digests.get(d).map_or(0, |s| s.first);
    let policy_changes = policy_versions(ledger)?
        .into_iter()
        .filter(|p| p.index > first)
        .map(|p| PolicyChangeNote {
            index: p.index,
            signers: p.signers,
            touches_its_checks: p.touched_checks.iter().any(|c| its_checks.contains(c)),
            changes: p.changes,
        })
        .collect();
    Ok(Some(DigestPage { report, gates, superseded, dev_only, policy_changes }))
}

fn release_page<S: Store>(ledger: &Ledger<S>, catalog: &Catalog, r: &str) -> Result<Option<ReleasePage>, LedgerError> {
    if !catalog.releases.contains(r) {
        return Ok(None);
    }
    let builds = ledger
        .release_builds(r)?
        .into_iter()
        .map(|b| ReleaseArtifact {
            promoted_to: b.digest.and_then(|d| catalog.digests.get(&d)).map(|s| s.promoted.clone()).unwrap_or_default(),
            artifact: b.artifact,
            index: b.index,
            digest: b.digest.map(|d| d.to_string()),
            revision: b.revision,
            dev_only: b.dev_only,
        })
        .collect();
    Ok(Some(ReleasePage { release: r.to_string(), builds }))
}

fn environment_page<S: Store>(ledger: &Ledger<S>, e: &str) -> Result<Option<EnvironmentPage>, LedgerError> {
    if !environment_names(ledger)?.iter().any(|n| n == e) {
        return Ok(None);
    }
    let (_, policy) = ledger.policy()?;
    let env = policy.environment(e);
    Ok(Some(EnvironmentPage {
        in_policy: env.is_some(),
        requires: env.and_then(|e| e.requires.clone()),
        required_checks: env.map(|e| e.required_checks.clone()).unwrap_or_default(),
        tags: env.map(|e| e.tags.clone()).unwrap_or_default(),
        history: crate::audit::history(ledger, e)?,
    }))
}

/// Every policy entry, ascending, with its predicate.
fn policy_predicates<S: Store>(
    ledger: &Ledger<S>,
) -> Result<Vec<(crate::ledger::StoredEntry, PolicyPredicate)>, LedgerError> {
    let mut out = Vec::new();
    for index in ledger.store().policy_entries()? {
        let e = ledger.read(index)?;
        if let Predicate::Policy(p) = &e.statement.predicate {
            let p = p.clone();
            out.push((e, p));
        }
    }
    Ok(out)
}

/// Every policy the chain has had, oldest first, each with what changed.
pub fn policy_versions<S: Store>(ledger: &Ledger<S>) -> Result<Vec<PolicyVersion>, LedgerError> {
    let policies = policy_predicates(ledger)?;
    // Key names from every policy, as `key_names` reads them, from the entries already read.
    let names: BTreeMap<KeyId, String> =
        policies.iter().flat_map(|(_, p)| p.keys.iter().map(|k| (k.id, k.name.clone()))).collect();
    let mut out = Vec::new();
    let mut previous: Option<PolicyPredicate> = None;
    for (e, p) in policies {
        let (changes, touched_checks) = match &previous {
            None => (vec!["the first policy (genesis)".to_string()], BTreeSet::new()),
            Some(prev) => policy_changes(prev, &p),
        };
        out.push(PolicyVersion {
            index: e.entry.index,
            hash: e.entry.hash().to_string(),
            recorded_at: rfc3339(e.entry.integrated_time),
            signers: crate::audit::signers(&e, &names),
            policy_threshold: p.policy_threshold,
            log_key: p.log.verifier_key.clone(),
            keys: p
                .keys
                .iter()
                .map(|k| PolicyKeyView {
                    name: k.name.clone(),
                    id: k.id.to_string(),
                    roles: k.roles.iter().map(|r| r.as_str()).collect(),
                })
                .collect(),
            environments: p
                .environments
                .iter()
                .map(|e| PolicyEnvironmentView {
                    name: e.name.clone(),
                    requires: e.requires.clone(),
                    required_checks: e.required_checks.clone(),
                    tags: e.tags.clone(),
                })
                .collect(),
            changes,
            touched_checks,
        });
        previous = Some(p);
    }
    Ok(out)
}

fn roles_text(roles: &[Role]) -> String {
    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
}

/// What changed from `a` to `b`, in sentences, and the checks the change
/// added to or removed from any environment.
fn policy_changes(a: &PolicyPredicate, b: &PolicyPredicate) -> (Vec<String>, BTreeSet<String>) {
    let mut out = Vec::new();
    let mut touched = BTreeSet::new();
    for k in &b.keys {
        match a.keys.iter().find(|o| o.id == k.id) {
            None => out.push(format!("key {} ({}) added with role {}", k.name, short(&k.id), roles_text(&k.roles))),
            Some(o) if o.roles != k.roles => out.push(format!(
                "key {} roles changed from {} to {}",
                k.name,
                roles_text(&o.roles),
                roles_text(&k.roles)
            )),
            Some(o) if o.name != k.name => out.push(format!("key {} renamed {}", o.name, k.name)),
            Some(_) => {}
        }
    }
    for o in a.keys.iter().filter(|o| !b.keys.iter().any(|k| k.id == o.id)) {
        out.push(format!("key {} ({}) removed", o.name, short(&o.id)));
    }
    if a.policy_threshold != b.policy_threshold {
        out.push(format!("policy threshold changed from {} to {}", a.policy_threshold, b.policy_threshold));
    }
    if a.log != b.log {
        out.push(format!("log key changed to {}", b.log.verifier_key));
    }
    for e in &b.environments {
        let Some(o) = a.environments.iter().find(|o| o.name == e.name) else {
            out.push(format!("environment {} added, requiring {}", e.name, checks_text(&e.required_checks)));
            touched.extend(e.required_checks.iter().cloned());
            continue;
        };
        let added: Vec<&String> = e.required_checks.iter().filter(|c| !o.required_checks.contains(c)).collect();
        let removed: Vec<&String> = o.required_checks.iter().filter(|c| !e.required_checks.contains(c)).collect();
        if !added.is_empty() {
            out.push(format!("{} now requires {}", e.name, join(&added)));
        }
        if !removed.is_empty() {
            out.push(format!("{} no longer requires {}", e.name, join(&removed)));
        }
        touched.extend(added.into_iter().chain(removed).cloned());
        if o.requires != e.requires {
            out.push(format!(
                "{} must now come from {}",
                e.name,
                e.requires.as_deref().unwrap_or("no earlier environment")
            ));
        }
        if o.tags != e.tags {
            out.push(format!("{} tags changed to {}", e.name, checks_text(&e.tags)));
        }
    }
    for o in a.environments.iter().filter(|o| !b.environments.iter().any(|e| e.name == o.name)) {
        out.push(format!("environment {} removed", o.name));
        touched.extend(o.required_checks.iter().cloned());
    }
    if out.is_empty() {
        out.push("no change in keys, roles, environments or checks".to_string());
    }
    (out, touched)
}

fn short(id: &KeyId) -> String {
    let s = id.to_string();
    s[..s.len().min(16)].to_string()
}

fn join(items: &[&String]) -> String {
    items.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

fn checks_text(items: &[String]) -> String {
    if items.is_empty() { "nothing".to_string() } else { items.join(", ") }
}

// ---------------------------------------------------------------- static report

/// The file that marks a directory as a report this command wrote, so that
/// a later report may replace it (and nothing else).
pub const MARKER: &str = ".provledger-report";

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0}")]
    Ledger(#[from] LedgerError),
    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("{0}: the directory holds files and is not a report written by `provledger report`; choose another --out")]
    NotAReport(std::path::PathBuf),
}

/// Writes every page (HTML and JSON) and the stylesheet into `out` (with
/// no ledger, the pages of an unverified one), whole or not at all: into a
/// new directory beside it, flushed to disk, then put in place in one step
/// (a report already at `out` is exchanged with it atomically, then
/// removed). Any other non-empty directory at `out` is refused. Returns the
/// number of pages.
pub fn write_static<S: Store>(
    ledger: Option<&Ledger<S>>,
    catalog: &Catalog,
    trust: &Trust,
    out: &std::path::Path,
) -> Result<usize, WriteError> {
    use std::path::Path;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WriteError::Io { path, source }
    };
    let Some(name) = out.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Err(io(out)(std::io::Error::new(std::io::ErrorKind::InvalidInput, "--out needs a directory name")));
    };
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    // Refused before anything is written; checked again just before the swap.
    let is_report = |out: &Path| -> Result<bool, WriteError> {
        match std::fs::read_dir(out) {
            Ok(mut entries) => {
                if entries.next().is_some() && !out.join(MARKER).is_file() {
                    return Err(WriteError::NotAReport(out.to_path_buf()));
                }
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(out)(e)),
        }
    };
    is_report(out)?;
    let tag = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
    let fresh = parent.join(format!(".{name}.new-{tag}"));
    let written = (|| {
        std::fs::create_dir(&fresh).map_err(io(&fresh))?;
        for sub in ["digests", "releases", "environments"] {
            std::fs::create_dir(fresh.join(sub)).map_err(io(&fresh))?;
        }
        // Plain writes, flushed all at once below: the directory is put in
        // place only after.
        let write = |rel: &str, bytes: &[u8]| -> Result<(), WriteError> {
            let path = fresh.join(rel);
            std::fs::write(&path, bytes).map_err(io(&path))
        };
        write("style.css", STYLESHEET.as_bytes())?;
        let pages = match ledger {
            Some(l) => pages(l, catalog, trust)?,
            None => Page::fixed().into(),
        };
        for page in &pages {
            let data = match ledger {
                Some(l) => page_data(l, catalog, trust, page)?,
                None => unverified_page(trust, page),
            };
            let data = data.expect("every listed page exists");
            write(&format!("{}.html", page.stem()), render(&data).as_bytes())?;
            write(&format!("{}.json", page.stem()), data.to_json().as_bytes())?;
        }
        write(MARKER, b"written by provledger report\n")?;
        let dir = std::fs::File::open(&fresh).map_err(io(&fresh))?;
        rustix::fs::syncfs(&dir).map_err(|e| io(&fresh)(e.into()))?;
        if is_report(out)? {
            // Exchanged in one step: `out` is always the old report or the new.
            rustix::fs::renameat_with(rustix::fs::CWD, &fresh, rustix::fs::CWD, out, rustix::fs::RenameFlags::EXCHANGE)
                .map_err(|e| io(out)(e.into()))?;
        } else {
            std::fs::rename(&fresh, out).map_err(io(out))?;
        }
        crate::fsutil::sync_parent(out).map_err(io(out))?;
        Ok(pages.len())
    })();
    // `fresh` now holds the old report, or what a failed write left.
    let _ = std::fs::remove_dir_all(&fresh);
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_has_one_path_and_reads_back_from_it() {
        let d: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        for page in [
            Page::Overview,
            Page::Digests,
            Page::Digest(d),
            Page::Releases,
            Page::Release("2026.12-rc1".into()),
            Page::Release("Release/1 ../x".into()),
            Page::Release("index".into()),
            Page::Release("x-ray".into()),
            Page::Release("_72".into()),
            Page::Environment("prod".into()),
            Page::Policy,
        ] {
            for (ext, json) in [("html", false), ("json", true)] {
                let path = format!("{}.{ext}", page.stem());
                assert!(!path.contains("..") && !path.contains(' '), "{path}");
                assert_eq!(Page::parse(&path), Some((page.clone(), json)), "{path}");
            }
        }
        assert_eq!(Page::parse(""), Some((Page::Overview, false)));
        assert_eq!(Page::parse("digests.html"), Some((Page::Digests, false)));
    }

    #[test]
    fn a_path_that_is_no_page_is_refused() {
        for path in [
            "index.htm",
            "../index.html",
            "digests/../index.html",
            "digests/sha256-zz.html",
            &format!("digests/sha256-{}.html", "AB".repeat(32)),
            "releases/Upper.html",
            "releases/_zz.html",
            "releases/_72.html", // "r" spelled as hex: one path per page
            "digests/index.html",
            "environments/a/b.html",
            "style.css",
            "policy",
        ] {
            assert_eq!(Page::parse(path), None, "{path}");
        }
    }

    #[test]
    fn links_between_pages_are_relative_to_where_they_are() {
        let env = Page::Environment("prod".into());
        assert_eq!(Page::Overview.link(&env, "html"), "environments/prod.html");
        assert_eq!(env.link(&Page::Overview, "html"), "../index.html");
        assert_eq!(env.link(&env, "json"), "../environments/prod.json");
        assert_eq!(env.root_link("style.css"), "../style.css");
    }

    #[test]
    fn a_repository_is_the_reference_without_tag_and_digest() {
        assert_eq!(
            repository("registry.example.com:5000/acme/app:1.0@sha256:ab"),
            "registry.example.com:5000/acme/app"
        );
        assert_eq!(repository("registry.example.com:5000/acme/app"), "registry.example.com:5000/acme/app");
        assert_eq!(repository("acme/app:dev"), "acme/app");
    }
}
