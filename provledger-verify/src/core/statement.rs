//! in-toto Statement v1 and the ledger's predicates.
//!
//! Statements are JSON (`application/vnd.in-toto+json`). The ledger signs the
//! exact bytes it writes here and later parses them strictly: unknown fields,
//! duplicate fields and unknown predicate types are refused, because a field
//! we do not understand is a claim we cannot check.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::FormatError;
use super::digest::{DIGEST_ALGORITHM, Digest};
use super::hash::EntryHash;
use super::keys::KeyId;

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// Build statements use SLSA Provenance v1.
pub const PREDICATE_BUILD: &str = "https://slsa.dev/provenance/v1";
pub const PREDICATE_VALIDATION: &str = "https://provledger.dev/validation/v1";
pub const PREDICATE_POLICY: &str = "https://provledger.dev/policy/v1";
pub const PREDICATE_PROMOTION: &str = "https://provledger.dev/promotion/v1";
/// `buildType` of the SLSA provenance the ledger writes.
pub const BUILD_TYPE: &str = "https://provledger.dev/build/container-image/v1";
/// Longest check, artifact or environment name.
pub const MAX_NAME_LEN: usize = 64;
/// Most subjects on one statement.
pub const MAX_SUBJECTS: usize = 256;

/// What a statement is about, and so which role may sign it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Build,
    Validation,
    Promotion,
    Policy,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Build, Role::Validation, Role::Promotion, Role::Policy];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Build => "build",
            Role::Validation => "validation",
            Role::Promotion => "promotion",
            Role::Policy => "policy",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reference to a ledger entry by index and hash: both must match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryRef {
    pub index: u64,
    pub hash: EntryHash,
}

/// An in-toto subject. `digest` holds `{"sha256": "<hex>"}`; it is empty only
/// for a dev-only statement about a tag-only reference, which deliberately
/// matches no artifact for any in-toto verifier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    pub name: String,
    #[serde(deserialize_with = "unique_map")]
    pub digest: BTreeMap<String, String>,
}

/// A JSON object of strings in which no key appears twice (serde would keep
/// the last of two silently; a digest set with two `sha256` values names two
/// artifacts at once).
fn unique_map<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    struct Unique;
    impl<'de> serde::de::Visitor<'de> for Unique {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of strings")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = m.next_entry::<String, String>()? {
                if out.contains_key(&k) {
                    return Err(serde::de::Error::custom(format!("duplicate key {k:?} in a digest set")));
                }
                out.insert(k, v);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Unique)
}

impl Subject {
    pub fn pinned(name: String, digest: Digest) -> Subject {
        Subject { name, digest: BTreeMap::from([(DIGEST_ALGORITHM.to_string(), digest.hex())]) }
    }

    pub fn tag_only(name: String) -> Subject {
        Subject { name, digest: BTreeMap::new() }
    }

    /// The sha256 digest, `None` for a tag-only subject; an error for any
    /// other digest set.
    pub fn sha256(&self) -> Result<Option<Digest>, FormatError> {
        match self.digest.len() {
            0 => Ok(None),
            1 => match self.digest.get(DIGEST_ALGORITHM) {
                Some(hex) => Ok(Some(Digest::from_hex(hex)?)),
                None => {
                    Err(FormatError::Statement(format!("subject {:?}: only sha256 digests are accepted", self.name)))
                }
            },
            _ => Err(FormatError::Statement(format!("subject {:?}: exactly one digest (sha256) expected", self.name))),
        }
    }
}

/// The statement as it is on the wire.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireStatement {
    #[serde(rename = "_type")]
    type_: String,
    subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    predicate: serde_json::Value,
}

/// The statement as it is read: the predicate is kept as raw JSON and
/// deserialised once, straight into its typed struct.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireStatementIn<'a> {
    #[serde(rename = "_type", borrow)]
    type_: std::borrow::Cow<'a, str>,
    subject: Vec<Subject>,
    #[serde(rename = "predicateType", borrow)]
    predicate_type: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    predicate: &'a serde_json::value::RawValue,
}

// ---------------------------------------------------------------- build (SLSA)

/// SLSA Provenance v1, as far as the ledger writes and reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildPredicate {
    pub build_definition: BuildDefinition,
    pub run_details: RunDetails,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildDefinition {
    pub build_type: String,
    pub external_parameters: ExternalParameters,
    pub internal_parameters: InternalParameters,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalParameters {
    /// The image reference exactly as the build lane gave it, normalised.
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// The release this artifact belongs to (artifacts of one release share
    /// a source revision and are promoted together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<CiRun>,
    /// The manifest's media type, as the registry served it (absent offline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The platform manifests of an image index, or the one platform of an
    /// image manifest, as the registry published them (absent offline).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformManifest>,
}

/// One platform's manifest of an image.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlatformManifest {
    /// `sha256:<hex>` of the platform manifest.
    pub digest: String,
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl PlatformManifest {
    /// `os/architecture[/variant]`, as container tools print a platform.
    pub fn platform(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// The CI run that produced or checked an artifact.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CiRun {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
}

impl CiRun {
    pub fn is_empty(&self) -> bool {
        self == &CiRun::default()
    }
}

/// What the ledger itself asserts about how the record was made.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LedgerFlags {
    /// Made from a tag-only reference under `--allow-tag`: never evidence for
    /// a promotion gate.
    pub dev_only: bool,
    /// The digest was confirmed by asking a registry (`false` with `--offline`).
    pub registry_confirmed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// The genesis hash of the one ledger this statement is for. A chain
    /// refuses a statement that names another ledger; new appends require it
    /// (statements from before it was introduced carry none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<EntryHash>,
    /// Random bytes that make each signed statement unique, so that an
    /// outcome recorded twice within one second is two entries, not a replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<Nonce>,
}

/// Bytes of a statement nonce.
pub const NONCE_LEN: usize = 16;

/// [`NONCE_LEN`] random bytes, as 32 lowercase hex characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Nonce([u8; NONCE_LEN]);

impl Nonce {
    /// A fresh nonce from the operating system's generator.
    pub fn random() -> Nonce {
        let mut b = [0u8; NONCE_LEN];
        rand::fill(&mut b);
        Nonce(b)
    }

    pub fn from_bytes(bytes: [u8; NONCE_LEN]) -> Nonce {
        Nonce(bytes)
    }

    pub fn parse(text: &str) -> Result<Nonce, FormatError> {
        if text.len() != 2 * NONCE_LEN || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(FormatError::Statement(format!("nonce must be {} lowercase hex characters", 2 * NONCE_LEN)));
        }
        let mut b = [0u8; NONCE_LEN];
        hex::decode_to_slice(text, &mut b).map_err(|e| FormatError::Statement(format!("nonce: {e}")))?;
        Ok(Nonce(b))
    }
}

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl Serialize for Nonce {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Nonce {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Nonce::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What binds a statement to one ledger and makes it unique there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    pub ledger: EntryHash,
    pub nonce: Nonce,
}

impl Binding {
    /// A binding to the ledger with this genesis hash, with a fresh nonce.
    pub fn fresh(ledger: EntryHash) -> Binding {
        Binding { ledger, nonce: Nonce::random() }
    }
}

impl LedgerFlags {
    /// `registry` names the registry exactly when the record says one confirmed it.
    fn check(&self) -> Result<(), FormatError> {
        match (self.registry_confirmed, &self.registry) {
            (true, None) => Err(FormatError::Statement("registryConfirmed is true but no registry is named".into())),
            (false, Some(r)) => {
                Err(FormatError::Statement(format!("registry {r:?} is named but registryConfirmed is false")))
            }
            _ => Ok(()),
        }
    }

    /// Flags for a new statement, bound by `binding` when given.
    pub fn new(dev_only: bool, registry: Option<String>, binding: Option<Binding>) -> LedgerFlags {
        LedgerFlags {
            dev_only,
            registry_confirmed: registry.is_some(),
            registry,
            ledger: binding.map(|b| b.ledger),
            nonce: binding.map(|b| b.nonce),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InternalParameters {
    pub provledger: LedgerFlags,
}

/// An SLSA ResourceDescriptor (used for the source revision).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceDescriptor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(deserialize_with = "unique_map")]
    pub digest: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunDetails {
    pub builder: Builder,
    pub metadata: BuildMetadata,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Builder {
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
    /// RFC 3339, UTC.
    pub finished_on: String,
}

impl BuildPredicate {
    /// The git commit the image was built from, if the build lane gave one.
    pub fn git_commit(&self) -> Option<&str> {
        self.build_definition.resolved_dependencies.iter().find_map(|r| r.digest.get("gitCommit").map(String::as_str))
    }

    pub fn flags(&self) -> &LedgerFlags {
        &self.build_definition.internal_parameters.provledger
    }

    fn check(&self) -> Result<(), FormatError> {
        if self.build_definition.build_type != BUILD_TYPE {
            return Err(FormatError::Statement(format!("unknown buildType {:?}", self.build_definition.build_type)));
        }
        if self.run_details.builder.id.is_empty() {
            return Err(FormatError::Statement("builder id is empty".into()));
        }
        check_timestamp(&self.run_details.metadata.finished_on)?;
        let ext = &self.build_definition.external_parameters;
        if let Some(a) = &ext.artifact {
            check_name("artifact", a)?;
        }
        if let Some(r) = &ext.release {
            check_name("release", r)?;
            if ext.artifact.is_none() {
                return Err(FormatError::Statement("a build in a release must name its artifact".into()));
            }
            if self.git_commit().is_none() {
                return Err(FormatError::Statement(
                    "a build in a release must name its source revision (gitCommit)".into(),
                ));
            }
        }
        // The one resolved dependency the ledger records is the source
        // revision: a digest set of exactly `gitCommit`.
        if self.build_definition.resolved_dependencies.len() > 1 {
            return Err(FormatError::Statement("a build names at most one resolved dependency (its source)".into()));
        }
        for r in &self.build_definition.resolved_dependencies {
            match (r.digest.len(), r.digest.get("gitCommit")) {
                (1, Some(sha)) => check_git_sha(sha)?,
                _ => {
                    return Err(FormatError::Statement(
                        "a resolved dependency's digest set is exactly {\"gitCommit\": <revision>}".into(),
                    ));
                }
            }
        }
        self.flags().check()?;
        if !self.flags().registry_confirmed && (ext.media_type.is_some() || !ext.platforms.is_empty()) {
            return Err(FormatError::Statement(
                "mediaType and platforms are what a registry served: an offline build (registryConfirmed false) \
                 carries neither"
                    .into(),
            ));
        }
        for p in &ext.platforms {
            p.digest.parse::<Digest>().map_err(|e| FormatError::Statement(format!("platform manifest: {e}")))?;
            if p.os.is_empty() || p.architecture.is_empty() {
                return Err(FormatError::Statement(format!(
                    "platform manifest {} names no os or architecture",
                    p.digest
                )));
            }
        }
        Ok(())
    }

    /// The platform manifest digests recorded for the image.
    pub fn platform_digests(&self) -> Vec<Digest> {
        self.build_definition.external_parameters.platforms.iter().filter_map(|p| p.digest.parse().ok()).collect()
    }
}

// ---------------------------------------------------------------- validation

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckResult {
    Pass,
    Fail,
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckResult::Pass => "pass",
            CheckResult::Fail => "fail",
        })
    }
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Check {
    pub name: String,
    pub result: CheckResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

/// Gate outcomes for one exact digest, bound to the build entry they checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidationPredicate {
    /// The build entry validated; absent only on a dev-only statement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<EntryRef>,
    pub checks: Vec<Check>,
    pub provledger: LedgerFlags,
    /// RFC 3339, UTC.
    pub validated_on: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<CiRun>,
}

impl ValidationPredicate {
    fn check(&self) -> Result<(), FormatError> {
        if self.checks.is_empty() {
            return Err(FormatError::Statement("a validation names no check".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.checks {
            check_name("check", &c.name)?;
            if !seen.insert(c.name.as_str()) {
                return Err(FormatError::Statement(format!("check {:?} appears twice", c.name)));
            }
        }
        if self.build.is_none() && !self.provledger.dev_only {
            return Err(FormatError::Statement("a validation must name the build entry it validated".into()));
        }
        self.provledger.check()?;
        check_timestamp(&self.validated_on)
    }
}

// ---------------------------------------------------------------- promotion

/// A digest promoted into an environment, naming the evidence the gate
/// relied on. The verifier replays the gate and requires the same evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromotionPredicate {
    /// The environment the digest had to pass through first, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub to: String,
    /// The build entry of the digest.
    pub build: EntryRef,
    /// The validation entries holding the counted outcome of each required check.
    pub validations: Vec<EntryRef>,
    pub provledger: LedgerFlags,
    /// RFC 3339, UTC.
    pub promoted_on: String,
    /// `REPO:TAG` the registry now serves the promoted digest under, when the
    /// promotion moved an environment tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_target: Option<String>,
    /// Set when the digest was promoted as one artifact of a release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseBinding>,
}

/// The release a promotion was made for, and the rebuilds it resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseBinding {
    pub id: String,
    pub artifact: String,
    /// The other digests recorded for the artifact in the release, which the
    /// promoter explicitly set aside (`promote --release --resolve`);
    /// ascending, without duplicates. Empty unless the artifact was rebuilt
    /// with another digest within the release.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supersedes: Vec<Digest>,
}

impl PromotionPredicate {
    fn check(&self) -> Result<(), FormatError> {
        check_name("environment", &self.to)?;
        if let Some(f) = &self.from {
            check_name("environment", f)?;
        }
        if self.provledger.dev_only {
            return Err(FormatError::Statement("a promotion cannot be dev-only".into()));
        }
        self.provledger.check()?;
        if let Some(t) = &self.tag_target {
            let r: super::image_ref::ImageRef =
                t.parse().map_err(|e| FormatError::Statement(format!("tag target {t:?}: {e}")))?;
            if r.tag().is_none() || r.is_pinned() {
                return Err(FormatError::Statement(format!("tag target {t:?} must be REPO:TAG, without a digest")));
            }
        }
        if let Some(r) = &self.release {
            check_name("release", &r.id)?;
            check_name("artifact", &r.artifact)?;
            if !r.supersedes.windows(2).all(|w| w[0] < w[1]) {
                return Err(FormatError::Statement("release supersedes must be ascending, without duplicates".into()));
            }
        }
        check_timestamp(&self.promoted_on)
    }
}

// ---------------------------------------------------------------- policy

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyKey {
    pub name: String,
    pub id: KeyId,
    pub algorithm: String,
    /// The 32-byte public key, lowercase hex.
    pub public: String,
    pub roles: Vec<Role>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyEnvironment {
    pub name: String,
    pub required_checks: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires: Option<String>,
    /// The registry tags (exact, or patterns with `*`) a promotion into this
    /// environment may move; absent means the environment's own name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// The ledger's own key, which signs its checkpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyLog {
    /// C2SP signed-note verifier key `<origin>+<hex8 key hash>+<base64(0x01 ‖ key)>`;
    /// its name is the checkpoints' origin line.
    pub verifier_key: String,
}

/// The trust policy. Semantic rules (unique names, ids matching keys, no
/// `requires` cycle, ...) are checked by `policy::Policy::from_predicate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyPredicate {
    pub version: u32,
    pub keys: Vec<PolicyKey>,
    pub environments: Vec<PolicyEnvironment>,
    /// Distinct policy-role signatures a policy change needs.
    pub policy_threshold: u32,
    /// The key that signs checkpoints while this policy is in force.
    pub log: PolicyLog,
    /// The policy entry this one replaces; absent only in the genesis entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<EntryRef>,
}

// ---------------------------------------------------------------- statement

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Predicate {
    Build(BuildPredicate),
    Validation(ValidationPredicate),
    Promotion(PromotionPredicate),
    Policy(PolicyPredicate),
}

impl Predicate {
    pub fn predicate_type(&self) -> &'static str {
        match self {
            Predicate::Build(_) => PREDICATE_BUILD,
            Predicate::Validation(_) => PREDICATE_VALIDATION,
            Predicate::Promotion(_) => PREDICATE_PROMOTION,
            Predicate::Policy(_) => PREDICATE_POLICY,
        }
    }

    /// The role a signer needs for this statement.
    pub fn role(&self) -> Role {
        match self {
            Predicate::Build(_) => Role::Build,
            Predicate::Validation(_) => Role::Validation,
            Predicate::Promotion(_) => Role::Promotion,
            Predicate::Policy(_) => Role::Policy,
        }
    }

    /// What the ledger asserts about the record; `None` for a policy.
    pub fn flags(&self) -> Option<&LedgerFlags> {
        match self {
            Predicate::Build(b) => Some(b.flags()),
            Predicate::Validation(v) => Some(&v.provledger),
            Predicate::Promotion(p) => Some(&p.provledger),
            Predicate::Policy(_) => None,
        }
    }

    pub fn is_dev_only(&self) -> bool {
        match self {
            Predicate::Build(b) => b.flags().dev_only,
            Predicate::Validation(v) => v.provledger.dev_only,
            Predicate::Promotion(_) | Predicate::Policy(_) => false,
        }
    }
}

/// A parsed in-toto Statement v1 with one of the ledger's predicates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub subjects: Vec<Subject>,
    pub predicate: Predicate,
}

impl Statement {
    /// The exact payload bytes to sign (compact JSON).
    pub fn to_payload(&self) -> Vec<u8> {
        let predicate = match &self.predicate {
            Predicate::Build(p) => serde_json::to_value(p),
            Predicate::Validation(p) => serde_json::to_value(p),
            Predicate::Promotion(p) => serde_json::to_value(p),
            Predicate::Policy(p) => serde_json::to_value(p),
        }
        .expect("predicate serialises");
        let wire = WireStatement {
            type_: STATEMENT_TYPE.to_string(),
            subject: self.subjects.clone(),
            predicate_type: self.predicate.predicate_type().to_string(),
            predicate,
        };
        serde_json::to_vec(&wire).expect("statement serialises")
    }

    /// Parses and checks a payload: statement type, subjects, predicate type
    /// and the predicate's own rules.
    pub fn parse(payload: &[u8]) -> Result<Statement, FormatError> {
        let wire: WireStatementIn<'_> =
            serde_json::from_slice(payload).map_err(|e| FormatError::Statement(format!("statement JSON: {e}")))?;
        if wire.type_ != STATEMENT_TYPE {
            return Err(FormatError::Statement(format!("_type is {:?}, expected {STATEMENT_TYPE}", wire.type_)));
        }
        let predicate = match wire.predicate_type.as_ref() {
            PREDICATE_BUILD => Predicate::Build(from_predicate(wire.predicate)?),
            PREDICATE_VALIDATION => Predicate::Validation(from_predicate(wire.predicate)?),
            PREDICATE_PROMOTION => Predicate::Promotion(from_predicate(wire.predicate)?),
            PREDICATE_POLICY => Predicate::Policy(from_predicate(wire.predicate)?),
            other if other.starts_with("https://provledger.dev/") => {
                return Err(FormatError::NewerVersion(format!("predicate type {other}")));
            }
            other => return Err(FormatError::Statement(format!("unknown predicate type {other:?}"))),
        };
        let statement = Statement { subjects: wire.subject, predicate };
        statement.check()?;
        Ok(statement)
    }

    fn check(&self) -> Result<(), FormatError> {
        if self.subjects.is_empty() {
            return Err(FormatError::Statement("statement has no subject".into()));
        }
        if self.subjects.len() > MAX_SUBJECTS {
            return Err(FormatError::Statement(format!("more than {MAX_SUBJECTS} subjects")));
        }
        let dev_only = self.predicate.is_dev_only();
        for s in &self.subjects {
            if s.name.is_empty() {
                return Err(FormatError::Statement("subject without a name".into()));
            }
            let pinned = s.sha256()?.is_some();
            if !pinned && !dev_only {
                return Err(FormatError::Statement(format!(
                    "subject {:?} has no digest (a tag-only reference is accepted only in a dev-only statement)",
                    s.name
                )));
            }
            if pinned && dev_only {
                return Err(FormatError::Statement(format!(
                    "subject {:?} is pinned, but the statement is dev-only (devOnly is true exactly when the \
                     subject is a tag-only reference)",
                    s.name
                )));
            }
            if !matches!(self.predicate, Predicate::Policy(_)) {
                check_subject_name(s, pinned)?;
            }
        }
        if dev_only && self.subjects.len() != 1 {
            return Err(FormatError::Statement("a dev-only statement names exactly one subject".into()));
        }
        if let Some(f) = self.predicate.flags()
            && let Some(r) = &f.registry
        {
            let name = &self.subjects[0].name;
            let host = parse_image(name)?.registry().to_string();
            if *r != host {
                return Err(FormatError::Statement(format!(
                    "registry {r:?} is not the registry of subject {name:?} ({host})"
                )));
            }
        }
        match &self.predicate {
            Predicate::Build(b) => {
                b.check()?;
                self.check_image(b)?;
                // The first subject is the image; every other subject is one
                // of its platform manifests, and every platform manifest is a
                // subject: a platform digest is evidence only through the
                // index that publishes it.
                let digests = self.subject_digests();
                let platforms = b.platform_digests();
                if let Some(extra) = digests.iter().skip(1).find(|d| !platforms.contains(d)) {
                    return Err(FormatError::Statement(format!(
                        "build subject {extra} is neither the image nor one of its platform manifests"
                    )));
                }
                if let Some(missing) = platforms.iter().find(|d| !digests.contains(d)) {
                    return Err(FormatError::Statement(format!("platform manifest {missing} is not a subject")));
                }
                Ok(())
            }
            Predicate::Validation(v) => v.check(),
            Predicate::Promotion(p) => {
                if self.subjects.len() != 1 {
                    return Err(FormatError::Statement("a promotion names exactly one digest".into()));
                }
                p.check()?;
                if let Some(t) = &p.tag_target {
                    let (target, subject) = (parse_image(t)?, parse_image(&self.subjects[0].name)?);
                    if target.registry() != subject.registry() {
                        return Err(FormatError::Statement(format!(
                            "tag target {t:?} is not in the registry of the promoted image ({})",
                            subject.registry()
                        )));
                    }
                }
                Ok(())
            }
            Predicate::Policy(_) => {
                if self.subjects.len() != 1 || self.subjects[0].name != POLICY_SUBJECT_NAME {
                    return Err(FormatError::Statement(format!(
                        "a policy statement has exactly one subject, named {POLICY_SUBJECT_NAME:?}"
                    )));
                }
                Ok(())
            }
        }
    }

    /// The statement bound to a ledger with a nonce (replacing any binding
    /// it had). A policy statement is left as it is: it is bound to its
    /// ledger by the policy entry it names as previous.
    pub fn bound(mut self, binding: Binding) -> Statement {
        let flags = match &mut self.predicate {
            Predicate::Build(b) => &mut b.build_definition.internal_parameters.provledger,
            Predicate::Validation(v) => &mut v.provledger,
            Predicate::Promotion(p) => &mut p.provledger,
            Predicate::Policy(_) => return self,
        };
        flags.ledger = Some(binding.ledger);
        flags.nonce = Some(binding.nonce);
        self
    }

    /// How a build's `image`, `tag`, first subject and `registry` relate:
    /// `image` is a canonical reference whose name is the first subject's
    /// name and whose digest is its digest (a dev-only build's image is its
    /// tag-only subject), and `tag` is the image's tag.
    fn check_image(&self, b: &BuildPredicate) -> Result<(), FormatError> {
        let ext = &b.build_definition.external_parameters;
        let image = parse_image(&ext.image)?;
        if image.to_string() != ext.image {
            return Err(FormatError::Statement(format!("image {:?} is not in canonical form ({image})", ext.image)));
        }
        let first = &self.subjects[0];
        let matches = match image.digest() {
            Some(d) => first.name == image.name() && first.sha256()? == Some(d),
            None => first.name == ext.image,
        };
        if !matches {
            return Err(FormatError::Statement(format!(
                "the first subject ({:?}) is not the image {:?}",
                first.name, ext.image
            )));
        }
        if ext.tag.as_deref() != image.tag() {
            return Err(FormatError::Statement(format!("tag {:?} is not the tag of image {:?}", ext.tag, ext.image)));
        }
        Ok(())
    }

    /// The sha256 digests of the subjects (tag-only subjects have none).
    pub fn subject_digests(&self) -> Vec<Digest> {
        self.subjects.iter().filter_map(|s| s.sha256().ok().flatten()).collect()
    }
}

fn from_predicate<T: serde::de::DeserializeOwned>(v: &serde_json::value::RawValue) -> Result<T, FormatError> {
    serde_json::from_str(v.get()).map_err(|e| FormatError::Statement(format!("predicate: {e}")))
}

/// Subject name of policy statements.
pub const POLICY_SUBJECT_NAME: &str = "provledger-policy";

fn parse_image(text: &str) -> Result<super::image_ref::ImageRef, FormatError> {
    text.parse().map_err(|e| FormatError::Statement(format!("{e}")))
}

/// An image subject's name is the canonical `registry/path` of the image;
/// a tag-only subject's is the canonical `registry/path:tag`.
fn check_subject_name(s: &Subject, pinned: bool) -> Result<(), FormatError> {
    let r = parse_image(&s.name)?;
    let canonical = if pinned {
        r.tag().is_none() && !r.is_pinned() && r.name() == s.name
    } else {
        r.tag().is_some() && !r.is_pinned() && r.to_string() == s.name
    };
    if canonical {
        Ok(())
    } else {
        Err(FormatError::Statement(format!(
            "subject name {:?} is not a canonical image name ({})",
            s.name,
            if pinned { "registry/path, no tag or digest" } else { "registry/path:tag" }
        )))
    }
}

/// Names of checks, artifacts and environments: `[a-z0-9][a-z0-9._-]*`, at
/// most [`MAX_NAME_LEN`] bytes.
pub fn check_name(what: &str, name: &str) -> Result<(), FormatError> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(FormatError::Statement(format!(
            "{what} name {name:?} is not valid (lowercase letters, digits, '.', '_', '-'; at most {MAX_NAME_LEN})"
        )))
    }
}

/// A git commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hex characters.
pub fn check_git_sha(sha: &str) -> Result<(), FormatError> {
    if (sha.len() == 40 || sha.len() == 64) && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(FormatError::Statement(format!("git revision {sha:?} is not 40 or 64 lowercase hex characters")))
    }
}

fn check_timestamp(t: &str) -> Result<(), FormatError> {
    humantime::parse_rfc3339(t).map(|_| ()).map_err(|e| FormatError::Statement(format!("timestamp {t:?}: {e}")))
}

/// RFC 3339 UTC with seconds, the form every timestamp in a statement takes.
pub fn rfc3339(unix_seconds: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_seconds)).to_string()
}
