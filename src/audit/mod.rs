//! The audit answers: everything the ledger knows about one digest, and the
//! promotion history of an environment. Read through the indexes only, so an
//! answer costs the same on a large ledger as on a small one.

pub mod export;
pub mod manifests;
pub mod proof;
pub mod site;
pub mod vsa;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::core::digest::Digest;
use crate::core::hash::EntryHash;
use crate::core::keys::KeyId;
use crate::core::statement::{Check, CiRun, PlatformManifest, Predicate, rfc3339};
use crate::ledger::{Ledger, LedgerError, StoredEntry};
use crate::store::{Store, source_key};

#[derive(Clone, Debug, Serialize, PartialEq, Eq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Signer {
    pub key_id: String,
    /// The key's name in the policy that listed it.
    pub name: Option<String>,
}

impl Signer {
    /// The key's name, else the first 8 characters of its id.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.key_id[..self.key_id.len().min(8)])
    }

    /// Labels of several signers, comma-separated.
    pub fn labels(signers: &[Signer]) -> String {
        signers.iter().map(Signer::label).collect::<Vec<_>>().join(",")
    }
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BuildInfo {
    pub index: u64,
    pub hash: String,
    pub recorded_at: String,
    pub image: String,
    pub tag: Option<String>,
    pub artifact: Option<String>,
    pub git_sha: Option<String>,
    pub source_repository: Option<String>,
    pub builder_id: String,
    pub ci: Option<CiRun>,
    pub signers: Vec<Signer>,
    pub dev_only: bool,
    pub registry_confirmed: bool,
    /// The registry that confirmed the digest.
    pub registry: Option<String>,
    pub media_type: Option<String>,
    pub platforms: Vec<PlatformManifest>,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ValidationInfo {
    pub index: u64,
    pub hash: String,
    pub recorded_at: String,
    pub build_index: Option<u64>,
    pub checks: Vec<Check>,
    pub signers: Vec<Signer>,
    pub dev_only: bool,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PromotionInfo {
    pub index: u64,
    pub hash: String,
    pub recorded_at: String,
    pub digest: String,
    pub from: Option<String>,
    pub to: String,
    pub build_index: u64,
    pub validation_indexes: Vec<u64>,
    pub signers: Vec<Signer>,
    pub registry_confirmed: bool,
    pub registry: Option<String>,
    /// `REPO:TAG` the promotion moved to the digest.
    pub tag_target: Option<String>,
}

/// Everything the chain says about one digest.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct DigestReport {
    pub digest: String,
    pub builds: Vec<BuildInfo>,
    pub validations: Vec<ValidationInfo>,
    pub promotions: Vec<PromotionInfo>,
    /// Things an auditor should look at: rebuilds of the same revision and
    /// policy changes after the digest was first recorded, each as its sentence.
    #[schemars(with = "Vec<String>")]
    pub findings: Vec<Finding>,
}

/// Something about a digest an auditor should look at. Shown (and written
/// in JSON) as its sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finding {
    /// The build at `index` has the source revision (and artifact) of the
    /// build at `other`, which built another digest, `digest`.
    Rebuild { revision: String, artifact: Option<String>, digest: Digest, other: u64, index: u64 },
    /// A policy entry after the digest's first entry: later entries were
    /// judged by another policy.
    PolicyChanged { policy: u64, first: u64 },
}

impl Finding {
    /// Whether this is a rebuild, whose digest needs a validation of its own.
    pub fn is_rebuild(&self) -> bool {
        matches!(self, Finding::Rebuild { .. })
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Rebuild { revision, artifact, digest, other, index } => {
                let when = if other < index { "before" } else { "after" };
                write!(f, "rebuild: revision {revision}")?;
                if let Some(a) = artifact {
                    write!(f, " artifact {a}")?;
                }
                write!(
                    f,
                    " was also built as {digest} (entry {other}, {when} entry {index}); \
                     a rebuilt digest needs its own validation"
                )
            }
            Finding::PolicyChanged { policy, first } => write!(
                f,
                "the policy changed at entry {policy}, after this digest was first recorded (entry {first}); \
                 later entries were judged by the new policy"
            ),
        }
    }
}

impl Serialize for Finding {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Promotions into one environment, newest first.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HistoryReport {
    pub environment: String,
    pub promotions: Vec<PromotionInfo>,
    /// The digest most recently promoted into the environment.
    pub current: Option<String>,
    /// The previous, different digest legitimately promoted there.
    pub rollback_target: Option<String>,
}

/// Key names from every policy the chain has had (a key keeps its name after
/// it is rotated out).
pub(crate) fn key_names<S: Store>(ledger: &Ledger<S>) -> Result<BTreeMap<KeyId, String>, LedgerError> {
    let mut names = BTreeMap::new();
    for index in ledger.store().policy_entries()? {
        if let Predicate::Policy(p) = ledger.read(index)?.statement.predicate {
            for k in p.keys {
                names.insert(k.id, k.name);
            }
        }
    }
    Ok(names)
}

pub(crate) fn signers(e: &StoredEntry, names: &BTreeMap<KeyId, String>) -> Vec<Signer> {
    let ids: Vec<String> = e.entry.envelope.signatures.iter().map(|s| s.keyid.clone()).collect();
    signers_of(&ids, names)
}

/// Signers named by key id, with their names from `names`.
pub(crate) fn signers_of(ids: &[String], names: &BTreeMap<KeyId, String>) -> Vec<Signer> {
    ids.iter()
        .map(|id| Signer { key_id: id.clone(), name: KeyId::parse(id).ok().and_then(|k| names.get(&k).cloned()) })
        .collect()
}

fn promotion_info(e: &StoredEntry, names: &BTreeMap<KeyId, String>) -> Option<PromotionInfo> {
    let Predicate::Promotion(p) = &e.statement.predicate else { return None };
    Some(PromotionInfo {
        index: e.entry.index,
        hash: e.entry.hash().to_string(),
        recorded_at: rfc3339(e.entry.integrated_time),
        digest: e.statement.subject_digests().first().map(|d| d.to_string()).unwrap_or_default(),
        from: p.from.clone(),
        to: p.to.clone(),
        build_index: p.build.index,
        validation_indexes: p.validations.iter().map(|r| r.index).collect(),
        signers: signers(e, names),
        registry_confirmed: p.provledger.registry_confirmed,
        registry: p.provledger.registry.clone(),
        tag_target: p.tag_target.clone(),
    })
}

/// The audit answer for `digest`, or `None` when no entry names it.
pub fn show<S: Store>(ledger: &Ledger<S>, digest: &Digest) -> Result<Option<DigestReport>, LedgerError> {
    let indexes = ledger.store().entries_for_subject(digest)?;
    if indexes.is_empty() {
        return Ok(None);
    }
    let names = key_names(ledger)?;
    let mut report = DigestReport {
        digest: digest.to_string(),
        builds: Vec::new(),
        validations: Vec::new(),
        promotions: Vec::new(),
        findings: Vec::new(),
    };
    for index in &indexes {
        let e = ledger.read(*index)?;
        // Always false today (dev-only statements are tag-only, so they name
        // no digest), kept in the report so that it says so explicitly.
        let dev_only = e.statement.predicate.is_dev_only();
        match &e.statement.predicate {
            Predicate::Build(b) => {
                let ext = &b.build_definition.external_parameters;
                let git_sha = b.git_commit().map(str::to_string);
                if let Some(sha) = &git_sha {
                    for other in ledger.store().builds_of_source(&source_key(sha, ext.artifact.as_deref()))? {
                        let o = ledger.read(other)?;
                        for d in o.statement.subject_digests() {
                            if d != *digest {
                                report.findings.push(Finding::Rebuild {
                                    revision: sha.clone(),
                                    artifact: ext.artifact.clone(),
                                    digest: d,
                                    other,
                                    index: *index,
                                });
                            }
                        }
                    }
                }
                report.builds.push(BuildInfo {
                    index: *index,
                    hash: e.entry.hash().to_string(),
                    recorded_at: rfc3339(e.entry.integrated_time),
                    image: ext.image.clone(),
                    tag: ext.tag.clone(),
                    artifact: ext.artifact.clone(),
                    git_sha,
                    source_repository: b
                        .build_definition
                        .resolved_dependencies
                        .iter()
                        .find_map(|r| r.uri.as_deref())
                        .map(|u| u.trim_start_matches("git+").to_string()),
                    builder_id: b.run_details.builder.id.clone(),
                    ci: ext.ci.clone(),
                    signers: signers(&e, &names),
                    dev_only,
                    registry_confirmed: b.flags().registry_confirmed,
                    registry: b.flags().registry.clone(),
                    media_type: ext.media_type.clone(),
                    platforms: ext.platforms.clone(),
                });
            }
            Predicate::Validation(v) => report.validations.push(ValidationInfo {
                index: *index,
                hash: e.entry.hash().to_string(),
                recorded_at: rfc3339(e.entry.integrated_time),
                build_index: v.build.map(|b| b.index),
                checks: v.checks.clone(),
                signers: signers(&e, &names),
                dev_only,
            }),
            Predicate::Promotion(_) => report.promotions.extend(promotion_info(&e, &names)),
            Predicate::Policy(_) => {}
        }
    }
    let first = indexes[0];
    for p in ledger.store().policy_entries()? {
        if p > first {
            report.findings.push(Finding::PolicyChanged { policy: p, first });
        }
    }
    report.findings.dedup();
    Ok(Some(report))
}

/// Promotions into `env`, newest first, with the current digest and the
/// rollback target.
pub fn history<S: Store>(ledger: &Ledger<S>, env: &str) -> Result<HistoryReport, LedgerError> {
    let names = key_names(ledger)?;
    let mut promotions = Vec::new();
    for index in ledger.store().promotions_into(env)?.into_iter().rev() {
        promotions.extend(promotion_info(&ledger.read(index)?, &names));
    }
    let current = promotions.first().map(|p| p.digest.clone());
    let rollback_target = promotions.iter().map(|p| &p.digest).find(|d| Some(*d) != current.as_ref()).cloned();
    Ok(HistoryReport { environment: env.to_string(), promotions, current, rollback_target })
}

/// A registry tag that promotions moved, and what the ledger says it serves.
#[derive(Clone, Debug, Serialize)]
pub struct TagTarget {
    pub environment: String,
    /// `REPO:TAG`, as the promotion recorded it.
    pub target: String,
    /// The digest of the newest promotion into the environment naming it.
    pub digest: String,
    /// The repository of that promotion's subject (`registry/path`).
    pub image: String,
    /// That promotion's entry.
    pub index: u64,
}

/// For each environment (or just `env`), each tag target its promotions
/// recorded, with the newest promotion naming it: the digest the tag must
/// serve. The tag moves only after that promotion is durable, so a tag that
/// serves anything else is a move that failed or was cut short.
pub fn tag_targets<S: Store>(ledger: &Ledger<S>, env: Option<&str>) -> Result<Vec<TagTarget>, LedgerError> {
    let (_, policy) = ledger.policy()?;
    let envs: Vec<String> = match env {
        Some(e) => vec![e.to_string()],
        None => policy.environments().iter().map(|e| e.name.clone()).collect(),
    };
    let mut out: Vec<TagTarget> = Vec::new();
    for environment in envs {
        for index in ledger.store().promotions_into(&environment)?.into_iter().rev() {
            let Some(t) = tag_target_at(ledger, &environment, index)? else { continue };
            if !out.iter().any(|o| o.environment == t.environment && o.target == t.target) {
                out.push(t);
            }
        }
    }
    Ok(out)
}

/// The newest promotion into `env` naming `target` as its tag target:
/// promotions are read newest first, up to that one.
pub fn newest_tag_target<S: Store>(
    ledger: &Ledger<S>,
    env: &str,
    target: &str,
) -> Result<Option<TagTarget>, LedgerError> {
    for index in ledger.store().promotions_into(env)?.into_iter().rev() {
        if let Some(t) = tag_target_at(ledger, env, index)?
            && t.target == target
        {
            return Ok(Some(t));
        }
    }
    Ok(None)
}

/// The tag target the promotion at `index` recorded, if it recorded one.
fn tag_target_at<S: Store>(ledger: &Ledger<S>, env: &str, index: u64) -> Result<Option<TagTarget>, LedgerError> {
    let e = ledger.read(index)?;
    let Predicate::Promotion(p) = &e.statement.predicate else { return Ok(None) };
    let (Some(target), Some(subject)) = (&p.tag_target, e.statement.subjects.first()) else { return Ok(None) };
    Ok(Some(TagTarget {
        environment: env.to_string(),
        target: target.clone(),
        digest: e.statement.subject_digests().first().map(|d| d.to_string()).unwrap_or_default(),
        image: subject.name.clone(),
        index,
    }))
}

// ---------------------------------------------------------------- release metadata

/// Keys every release metadata document must carry.
pub const METADATA_KEYS: [&str; 7] = [
    "git_sha",
    "image_repo",
    "image_tag",
    "image_digest",
    "image_ref_digest",
    "supported_architectures",
    "build_timestamp",
];
/// Keys `check-bundle --require-ci-evidence` adds.
pub const CI_EVIDENCE_KEYS: [&str; 3] = ["ci_run_url", "ci_run_id", "ci_workflow"];
/// Keys of the release manifest form.
pub const MANIFEST_KEYS: [&str; 4] = ["schemaVersion", "gitSha", "buildTimestamp", "artifacts"];
/// Keys of each artifact of a release manifest.
pub const ARTIFACT_KEYS: [&str; 4] = ["name", "type", "digest", "uri"];

/// `architecture[/variant]` of each platform, sorted, without repeats.
fn architectures(platforms: &[PlatformManifest]) -> Vec<String> {
    let mut out: Vec<String> = platforms
        .iter()
        .map(|p| match &p.variant {
            Some(v) => format!("{}/{v}", p.architecture),
            None => p.architecture.clone(),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn entry_ref_json(index: u64, hash: &str) -> serde_json::Value {
    serde_json::json!({"index": index, "hash": hash})
}

/// Release metadata for `digest`, derived only from signed entries: the
/// newest non-dev-only build, its validations and promotions. Both forms: the
/// flat metadata keys and a `release_manifest`. `None` when no build of the
/// digest is recorded.
pub fn release_metadata<S: Store>(
    ledger: &Ledger<S>,
    digest: &Digest,
) -> Result<Option<serde_json::Value>, LedgerError> {
    let Some(report) = show(ledger, digest)? else { return Ok(None) };
    let Some(build) = report.builds.iter().rev().find(|b| !b.dev_only) else { return Ok(None) };
    let image: crate::core::image_ref::ImageRef =
        build.image.parse().map_err(|e| LedgerError::Stored { index: build.index, source: e })?;
    let ci = build.ci.clone().unwrap_or_default();
    // The other artifacts of the same release, newest build of each.
    let mut artifacts = BTreeMap::new();
    let release = match ledger.read(build.index)?.statement.predicate {
        Predicate::Build(b) => b.build_definition.external_parameters.release,
        _ => None,
    };
    if let Some(r) = &release {
        for index in ledger.store().builds_of_release(r)? {
            let e = ledger.read(index)?;
            if let (Predicate::Build(b), Some(d)) = (&e.statement.predicate, e.statement.subject_digests().first()) {
                let ext = &b.build_definition.external_parameters;
                let uri = ext.image.parse::<crate::core::image_ref::ImageRef>().map(|i| i.name()).unwrap_or_default();
                artifacts.insert(ext.artifact.clone().unwrap_or_default(), (d.to_string(), format!("{uri}@{d}")));
            }
        }
    } else {
        artifacts.insert(
            build.artifact.clone().unwrap_or_else(|| image.repository().to_string()),
            (digest.to_string(), format!("{}@{digest}", image.name())),
        );
    }
    let mut evidence = vec![serde_json::json!({"kind": "build", "index": build.index, "hash": build.hash})];
    evidence.extend(
        report.validations.iter().map(|v| serde_json::json!({"kind": "validation", "index": v.index, "hash": v.hash})),
    );
    evidence.extend(
        report
            .promotions
            .iter()
            .map(|p| serde_json::json!({"kind": "promotion", "index": p.index, "hash": p.hash, "to": p.to})),
    );
    let genesis = ledger.genesis_hash()?.map(|g| g.to_string());
    Ok(Some(serde_json::json!({
        "git_sha": build.git_sha,
        "image_repo": image.name(),
        "image_tag": image.tag(),
        "image_digest": digest.to_string(),
        "image_ref_digest": format!("{}@{digest}", image.name()),
        // From the platforms the registry published; an offline build knows none.
        "supported_architectures": architectures(&build.platforms),
        "build_timestamp": build.recorded_at,
        "ci_run_url": ci.run_url,
        "ci_run_id": ci.run_id,
        "ci_workflow": ci.workflow,
        "release": release,
        "evidence": {
            "ledger_genesis": genesis,
            "build": entry_ref_json(build.index, &build.hash),
            "validations": report.validations.iter().map(|v| entry_ref_json(v.index, &v.hash)).collect::<Vec<_>>(),
            "promotions": report.promotions.iter().map(|p| entry_ref_json(p.index, &p.hash)).collect::<Vec<_>>(),
        },
        "release_manifest": {
            "schemaVersion": 1,
            "gitSha": build.git_sha,
            "buildTimestamp": build.recorded_at,
            "artifacts": artifacts.into_iter().map(|(name, (digest, uri))| serde_json::json!({
                "name": name, "type": "container-image", "digest": digest, "uri": uri,
            })).collect::<Vec<_>>(),
            "evidence": evidence,
            "ledgerGenesis": genesis,
        },
    })))
}

fn missing(v: &serde_json::Value, key: &str) -> bool {
    match v.get(key) {
        None | Some(serde_json::Value::Null) => true,
        Some(serde_json::Value::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

/// The keys a release metadata document lacks (absent, null or empty), in
/// either form: the flat metadata, or a release manifest (`schemaVersion`).
pub fn missing_keys(doc: &serde_json::Value, require_ci_evidence: bool) -> Vec<String> {
    let mut out = Vec::new();
    if doc.get("schemaVersion").is_some() {
        out.extend(MANIFEST_KEYS.iter().filter(|k| missing(doc, k)).map(|k| k.to_string()));
        match doc.get("artifacts").and_then(|a| a.as_array()) {
            Some(list) if !list.is_empty() => {
                for (i, a) in list.iter().enumerate() {
                    out.extend(ARTIFACT_KEYS.iter().filter(|k| missing(a, k)).map(|k| format!("artifacts[{i}].{k}")));
                }
            }
            _ => {
                if !out.iter().any(|k| k == "artifacts") {
                    out.push("artifacts (empty)".into());
                }
            }
        }
        return out;
    }
    out.extend(METADATA_KEYS.iter().filter(|k| missing(doc, k)).map(|k| k.to_string()));
    if require_ci_evidence {
        out.extend(CI_EVIDENCE_KEYS.iter().filter(|k| missing(doc, k)).map(|k| k.to_string()));
    }
    out
}

/// An attestation read back from a registry and matched to the ledger.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Attested {
    pub index: u64,
    pub hash: String,
    pub kind: &'static str,
    pub signers: Vec<String>,
}

/// Why an envelope fetched from outside is not an attestation of this
/// ledger's. Shown (and written in JSON) as its sentence.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotAttested {
    #[error("not a DSSE envelope: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("not a DSSE envelope: {0}")]
    NotAnEnvelope(#[source] crate::core::FormatError),
    #[error("its statement is not recorded in this ledger")]
    NotRecorded,
    /// The same statement is recorded, with other signatures.
    #[error("it differs from the envelope recorded as entry {index} (signatures altered)")]
    Altered { index: u64 },
    #[error("signature check under the policy of entry {policy}: {reason}")]
    Signatures { policy: u64, reason: String },
    #[error("entry {index} is not about {digest}")]
    OtherDigest { index: u64, digest: Digest },
}

impl Serialize for NotAttested {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Checks a DSSE envelope (JSON) fetched from outside against the ledger:
/// it must be, byte for byte, the envelope recorded as an entry of this
/// ledger, its signatures must verify under the policy in force at that
/// entry, and `digest` must be among its subjects. The inner `Err` says why
/// an envelope is refused; the outer one is a ledger that cannot be read.
pub fn check_attestation<S: Store>(
    ledger: &Ledger<S>,
    digest: &Digest,
    json: &[u8],
) -> Result<Result<Attested, NotAttested>, LedgerError> {
    let envelope = match serde_json::from_slice(json)
        .map_err(NotAttested::NotJson)
        .and_then(|v| crate::core::dsse::Envelope::from_json_value(v).map_err(NotAttested::NotAnEnvelope))
    {
        Ok(e) => e,
        Err(e) => return Ok(Err(e)),
    };
    let fingerprint = crate::core::entry::envelope_fingerprint(&envelope);
    let Some(index) = ledger.store().envelope_entry(&fingerprint)? else {
        return Ok(Err(NotAttested::NotRecorded));
    };
    let stored = ledger.read(index)?;
    if stored.entry.envelope != envelope {
        return Ok(Err(NotAttested::Altered { index }));
    }
    // The policy in force for entry `index`: the newest policy entry before
    // it (the genesis policy is in force for itself).
    let policy_index = ledger.store().policy_entries()?.into_iter().rfind(|&p| p < index || p == 0).unwrap_or(0);
    let Predicate::Policy(p) = &ledger.read(policy_index)?.statement.predicate else {
        return Err(crate::store::StoreError::Corrupt(format!("entry {policy_index} is indexed as a policy")).into());
    };
    let policy = crate::policy::Policy::from_predicate(p, &format!("entry {policy_index}"))
        .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
    if let Err((_, reason)) = crate::verify::envelope_signers(&policy, &envelope) {
        return Ok(Err(NotAttested::Signatures { policy: policy_index, reason }));
    }
    if !stored.statement.subject_digests().contains(digest) {
        return Ok(Err(NotAttested::OtherDigest { index, digest: *digest }));
    }
    Ok(Ok(Attested {
        index,
        hash: stored.entry.hash().to_string(),
        kind: stored.statement.predicate.role().as_str(),
        signers: envelope.signatures.iter().map(|s| s.keyid.clone()).collect(),
    }))
}

/// A ledger entry's envelope, as `attach` publishes it next to the image.
#[derive(Clone, Debug)]
pub struct RecordedEnvelope {
    pub index: u64,
    pub hash: EntryHash,
    /// The DSSE envelope, as JSON.
    pub envelope_json: Vec<u8>,
}

/// The envelope of every entry naming `digest`, in chain order.
pub fn envelopes_for<S: Store>(ledger: &Ledger<S>, digest: &Digest) -> Result<Vec<RecordedEnvelope>, LedgerError> {
    let mut out = Vec::new();
    for index in ledger.store().entries_for_subject(digest)? {
        let e = ledger.read(index)?;
        let envelope_json = serde_json::to_vec(&e.entry.envelope.to_json_value()).expect("JSON values serialise");
        out.push(RecordedEnvelope { index, hash: e.entry.hash(), envelope_json });
    }
    Ok(out)
}

/// The image (`registry/repository`, as recorded) of the newest build of
/// `digest`, if one is recorded.
pub fn built_image<S: Store>(ledger: &Ledger<S>, digest: &Digest) -> Result<Option<String>, LedgerError> {
    let Some((_, build)) = ledger.latest_build_for(digest)? else { return Ok(None) };
    let Predicate::Build(b) = &build.statement.predicate else { return Ok(None) };
    Ok(Some(b.build_definition.external_parameters.image.clone()))
}

/// The promotion of `digest` into `env` that moved `target` to it, when it
/// is the newest promotion into `env` naming `target`: running the same
/// `promote --tag-target` again then only moves the tag. Only a digest
/// already promoted into `env` can be such a rerun: that is read from the
/// entries naming the digest, and only then the promotions into `env`.
pub fn tag_promotion_of<S: Store>(
    ledger: &Ledger<S>,
    digest: &Digest,
    env: &str,
    target: &str,
) -> Result<Option<TagTarget>, LedgerError> {
    let promoted = ledger
        .evidence_for(digest)?
        .iter()
        .any(|e| matches!(&e.kind, crate::gate::EvidenceKind::Promotion { to } if to == env));
    if !promoted {
        return Ok(None);
    }
    Ok(newest_tag_target(ledger, env, target)?.filter(|t| t.digest == digest.to_string()))
}

#[derive(Debug, thiserror::Error)]
pub enum PromotionsError {
    #[error("environment {0:?} is not in the policy and was never promoted into")]
    UnknownEnvironment(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Every promotion into `env` and into the policy's other environments that
/// the ledger holds, from its index (each entry was verified by the chain
/// rules when it was written), so that a refusal can say where a digest
/// did go. An environment the policy does not name and nothing was ever
/// promoted into is refused.
pub fn promotions<S: Store>(ledger: &Ledger<S>, env: &str) -> Result<crate::promoted::Promotions, PromotionsError> {
    let policy = ledger.policy()?.1;
    let mut indexes = ledger.store().promotions_into(env).map_err(LedgerError::from)?;
    if indexes.is_empty() && policy.environment(env).is_none() {
        return Err(PromotionsError::UnknownEnvironment(env.to_string()));
    }
    for other in policy.environments().iter().filter(|e| e.name != env) {
        indexes.extend(ledger.store().promotions_into(&other.name).map_err(LedgerError::from)?);
    }
    indexes.sort_unstable();
    let mut promotions = crate::promoted::Promotions::new();
    for i in indexes {
        let e = ledger.read(i)?;
        promotions.record_stored(&e.entry, &e.statement);
    }
    Ok(promotions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_read_as_their_sentence_in_text_and_json() {
        let d = Digest::of(b"other");
        let rebuild = |artifact: Option<&str>, other| Finding::Rebuild {
            revision: "abc123".into(),
            artifact: artifact.map(str::to_string),
            digest: d,
            other,
            index: 4,
        };
        assert_eq!(
            rebuild(Some("api"), 2).to_string(),
            format!(
                "rebuild: revision abc123 artifact api was also built as {d} (entry 2, before entry 4); \
                 a rebuilt digest needs its own validation"
            )
        );
        assert!(rebuild(None, 7).to_string().starts_with("rebuild: revision abc123 was also built as"));
        assert!(rebuild(None, 7).to_string().contains("(entry 7, after entry 4)"));
        let changed = Finding::PolicyChanged { policy: 5, first: 1 };
        assert!(rebuild(None, 7).is_rebuild() && !changed.is_rebuild());
        assert_eq!(serde_json::to_value(&changed).unwrap(), changed.to_string());
        assert_eq!(
            changed.to_string(),
            "the policy changed at entry 5, after this digest was first recorded (entry 1); later entries were \
             judged by the new policy"
        );
    }
}
