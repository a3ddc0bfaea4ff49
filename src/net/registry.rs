//! The registry side of identity: what an OCI registry publishes, asked
//! through oci-client and checked here.
//!
//! Every manifest read is hashed and compared with the digest it was asked
//! for (or, for a tag, with the digest the registry names for it), so a
//! registry cannot serve one artifact under another's name. Nothing here
//! trusts a tag beyond the one request that resolves it.
//!
//! Attestations are pushed as an OCI 1.1 artifact whose `subject` is the
//! image: listed by the referrers API where the registry has it, and by the
//! `sha256-<hex>` tag scheme otherwise.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::core::digest::Digest;
use crate::core::image_ref::ImageRef;
use crate::core::statement::PlatformManifest;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// What the ledger accepts as a manifest, in preference order.
pub const MANIFEST_TYPES: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST];
/// The OCI empty descriptor's media type, used as an artifact's config.
pub const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
/// `artifactType` of the artifact that carries a digest's DSSE envelopes.
pub const ATTESTATIONS_ARTIFACT_TYPE: &str = "application/vnd.provledger.attestations.v1+json";
/// Media type of each layer of that artifact: one DSSE envelope, JSON.
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
/// Layer annotations naming the ledger entry an envelope was recorded as.
pub const ANNOTATION_ENTRY_INDEX: &str = "dev.provledger.entry.index";
pub const ANNOTATION_ENTRY_HASH: &str = "dev.provledger.entry.hash";
/// Artifact annotation naming the ledger (its genesis hash).
pub const ANNOTATION_GENESIS: &str = "dev.provledger.genesis";
/// `artifactType` of a ledger published to a registry (`sync --to oci://`).
pub const LEDGER_ARTIFACT_TYPE: &str = "application/vnd.provledger.ledger.v1";
/// Media type of each blob of a published ledger: entries in bundle frames.
pub const LEDGER_ENTRIES: &str = "application/vnd.provledger.entries.v1";
/// Manifest annotation of a published ledger: its signed checkpoint note.
pub const ANNOTATION_CHECKPOINT: &str = "dev.provledger.checkpoint";
/// Blob annotations: the index of the first entry, and how many it holds.
pub const ANNOTATION_ENTRIES_START: &str = "dev.provledger.entries.start";
pub const ANNOTATION_ENTRIES_COUNT: &str = "dev.provledger.entries.count";
/// Largest blob of entries read.
pub const MAX_LEDGER_BLOB_LEN: usize = 512 << 20;
/// Most blobs one published ledger lists.
pub const MAX_LEDGER_BLOBS: usize = 1 << 16;
/// Largest manifest read.
pub const MAX_MANIFEST_LEN: usize = 4 << 20;
/// Largest image config read (for its platform).
pub const MAX_CONFIG_LEN: usize = 1 << 20;
/// Largest attestation layer read.
pub const MAX_ENVELOPE_LEN: usize = 4 << 20;
/// Most platform manifests read from one index.
pub const MAX_PLATFORMS: usize = 128;
/// Environment variable listing registries reached over plain HTTP.
pub const INSECURE_ENV: &str = "PROVLEDGER_INSECURE_REGISTRIES";
/// Environment variables giving basic-auth credentials for every registry.
pub const USERNAME_ENV: &str = "PROVLEDGER_REGISTRY_USERNAME";
pub const PASSWORD_ENV: &str = "PROVLEDGER_REGISTRY_PASSWORD";

#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("registry {host} is unreachable: {detail}")]
    Unreachable { host: String, detail: String },
    #[error("{reference} is not in the registry")]
    NotFound { reference: String },
    #[error("registry {host} refused access: {detail}")]
    Unauthorized { host: String, detail: String },
    #[error("{reference}: the registry served content that does not hash to the digest it names ({detail})")]
    DigestMismatch { reference: String, detail: String },
    #[error("{reference}: {detail}")]
    Protocol { reference: String, detail: String },
}

/// How to reach registries.
#[derive(Clone, Debug)]
pub struct Options {
    /// `HOST[:PORT]` of registries spoken to over plain HTTP; every other
    /// registry is HTTPS only.
    pub insecure: Vec<String>,
    /// Connect and read timeout of each request.
    pub timeout: Duration,
}

impl Options {
    /// `insecure` plus the registries named in [`INSECURE_ENV`] (comma-separated).
    pub fn new(mut insecure: Vec<String>, timeout: Duration) -> Options {
        if let Ok(list) = std::env::var(INSECURE_ENV) {
            insecure.extend(list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string));
        }
        Options { insecure, timeout }
    }
}

/// A manifest as the registry served it, its hash checked.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
    /// The bytes, parsed once.
    doc: ManifestDoc,
}

impl Manifest {
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_MANIFEST_LIST
    }

    /// A manifest the ledger writes: `doc`'s bytes and their digest.
    fn written(doc: ManifestDoc) -> Manifest {
        let bytes = serde_json::to_vec(&doc).expect("manifest serialises");
        let media_type = doc.declared_type().to_string();
        Manifest { digest: Digest::of(&bytes), media_type, bytes, doc }
    }

    fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.to_string(),
            size: self.bytes.len() as u64,
            ..Descriptor::default()
        }
    }
}

/// What a reference resolves to: the manifest and the platforms it publishes.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub manifest: Manifest,
    /// For an index, each platform manifest (each read and hash-checked);
    /// for an image manifest, its own platform from its config, when stated.
    pub platforms: Vec<PlatformManifest>,
}

/// One DSSE envelope to attach, with the ledger entry it was recorded as.
#[derive(Clone, Debug)]
pub struct AttestationLayer {
    pub envelope_json: Vec<u8>,
    pub entry_index: u64,
    pub entry_hash: String,
}

/// One envelope read back from an attestation artifact.
#[derive(Clone, Debug)]
pub struct FetchedLayer {
    /// Digest of the artifact manifest it came from.
    pub artifact: Digest,
    /// Position among that artifact's layers.
    pub layer: usize,
    pub bytes: Vec<u8>,
}

/// A ledger as published in a registry: the checkpoint note (unverified)
/// and the blobs of entries, in order.
#[derive(Clone, Debug)]
pub struct PublishedLedger {
    pub manifest: Digest,
    pub checkpoint: String,
    pub genesis: String,
    pub chunks: Vec<LedgerChunk>,
}

/// One blob of a published ledger: entries `start..start + count`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerChunk {
    pub start: u64,
    pub count: u64,
    pub digest: Digest,
    pub size: u64,
}

/// How an attached artifact is listed as a referrer of its subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReferrersScheme {
    /// The registry's referrers API lists it.
    Api,
    /// The registry has no referrers API: the `sha256-<hex>` tag's index lists it.
    TagSchema,
}

/// An OCI descriptor, as far as the ledger reads and writes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Platform {
    architecture: String,
    os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
}

/// Image manifest or index, read leniently (unknown fields are ignored:
/// registries add their own), written with only the fields below.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestDoc {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    config: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layers: Option<Vec<Descriptor>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    annotations: std::collections::BTreeMap<String, String>,
}

impl ManifestDoc {
    /// An OCI 1.1 artifact manifest: `artifact_type`, the empty config
    /// (whose blob `{}` the pusher pushes first), `layers`, `annotations`.
    fn artifact(
        artifact_type: &str,
        layers: Vec<Descriptor>,
        annotations: std::collections::BTreeMap<String, String>,
    ) -> ManifestDoc {
        ManifestDoc {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.to_string()),
            artifact_type: Some(artifact_type.to_string()),
            config: Some(Descriptor {
                media_type: EMPTY_CONFIG.to_string(),
                digest: Digest::of(b"{}").to_string(),
                size: 2,
                ..Descriptor::default()
            }),
            layers: Some(layers),
            annotations,
            ..ManifestDoc::default()
        }
    }

    /// The media type a manifest declares, or the one its shape implies.
    fn declared_type(&self) -> &str {
        match &self.media_type {
            Some(t) => t,
            None if self.manifests.is_some() => OCI_INDEX,
            None => OCI_MANIFEST,
        }
    }

    /// Every blob an image manifest references.
    fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config.iter().chain(self.layers.iter().flatten())
    }
}

#[derive(Deserialize)]
struct ImageConfig {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

fn protocol(reference: &str, detail: impl Into<String>) -> RegistryError {
    RegistryError::Protocol { reference: reference.to_string(), detail: detail.into() }
}

/// The text of an error and its causes, for a message that names the host.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// Where to read or write: a tag or a digest in an image's repository.
#[derive(Clone, Debug)]
pub enum Target<'a> {
    Tag(&'a str),
    Digest(Digest),
}

/// The process's one runtime for registry calls, made on first use: the
/// ledger is synchronous, and registry calls are few and sequential, so a
/// current-thread runtime shared by every client serves them all.
fn runtime() -> Result<&'static tokio::runtime::Runtime, RegistryError> {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| protocol("runtime", e.to_string()))?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// A registry client for one command, on the process's registry runtime.
pub struct Registry {
    client: Client,
    runtime: &'static tokio::runtime::Runtime,
    /// Credentials by registry host.
    credentials: std::sync::Mutex<std::collections::BTreeMap<String, RegistryAuth>>,
}

impl Registry {
    pub fn new(options: &Options) -> Result<Registry, RegistryError> {
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(options.insecure.clone()),
            connect_timeout: Some(options.timeout),
            read_timeout: Some(options.timeout),
            platform_resolver: None,
            user_agent: concat!("provledger/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        Ok(Registry { client: Client::new(config), runtime: runtime()?, credentials: Default::default() })
    }

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// Reads a manifest by tag or digest, hash-checked.
    pub fn manifest(&self, image: &ImageRef, target: Target<'_>) -> Result<Manifest, RegistryError> {
        self.block_on(self.manifest_async(image, target))
    }

    /// Resolves a reference: by its tag when it has one (so that a digest the
    /// caller also gives can be compared with what the tag names now), else
    /// by its digest. Reads the platforms an index publishes.
    pub fn resolve(&self, image: &ImageRef) -> Result<Resolved, RegistryError> {
        self.block_on(async {
            let target = match (image.tag(), image.digest()) {
                (Some(tag), _) => Target::Tag(tag),
                (None, Some(d)) => Target::Digest(d),
                (None, None) => Target::Tag("latest"),
            };
            let manifest = self.manifest_async(image, target).await?;
            let platforms = self.platforms(image, &manifest).await?;
            Ok(Resolved { manifest, platforms })
        })
    }

    /// Whether the registry still serves `digest` in the image's repository.
    pub fn exists(&self, image: &ImageRef, digest: Digest) -> Result<bool, RegistryError> {
        match self.manifest(image, Target::Digest(digest)) {
            Ok(_) => Ok(true),
            Err(RegistryError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Serves the manifest `digest` of `from`'s repository under `to`'s tag,
    /// byte for byte: across repositories of one registry, the blobs and
    /// platform manifests are copied first, and the digest's attestation
    /// artifacts with them. Returns the digest the tag then names.
    pub fn copy_to_tag(&self, from: &ImageRef, digest: Digest, to: &ImageRef) -> Result<Digest, RegistryError> {
        let tag = to.tag().ok_or_else(|| protocol(&to.to_string(), "a tag target needs a tag"))?;
        if from.registry() != to.registry() {
            return Err(protocol(
                &to.to_string(),
                format!(
                    "the tag target is in registry {}, the image in {}: promotion copies within one registry",
                    to.registry(),
                    from.registry()
                ),
            ));
        }
        self.block_on(async {
            let manifest = self.manifest_async(from, Target::Digest(digest)).await?;
            if from.repository() != to.repository() {
                self.copy_content(from, to, &manifest).await?;
                for artifact in self.referrer_manifests(from, digest).await? {
                    self.copy_content(from, to, &artifact).await?;
                    self.push_manifest(to, Target::Digest(artifact.digest), &artifact).await?;
                    self.register_referrer(to, &manifest, &artifact).await?;
                }
            }
            self.push_manifest(to, Target::Tag(tag), &manifest).await?;
            let now = self.manifest_async(to, Target::Tag(tag)).await?;
            if now.digest != digest {
                return Err(RegistryError::DigestMismatch {
                    reference: to.to_string(),
                    detail: format!("after the push the tag names {}, not {digest}", now.digest),
                });
            }
            Ok(now.digest)
        })
    }

    /// Pushes `layers` as one attestation artifact whose subject is
    /// `image@digest`, and lists it as a referrer. Returns the artifact's
    /// digest and how it is listed.
    pub fn attach(
        &self,
        image: &ImageRef,
        digest: Digest,
        layers: &[AttestationLayer],
        genesis: &str,
    ) -> Result<(Digest, ReferrersScheme), RegistryError> {
        self.block_on(async {
            let subject = self.manifest_async(image, Target::Digest(digest)).await?;
            self.push_blob(image, b"{}").await?;
            let mut descriptors = Vec::with_capacity(layers.len());
            for l in layers {
                self.push_blob(image, &l.envelope_json).await?;
                descriptors.push(Descriptor {
                    media_type: DSSE_ENVELOPE.to_string(),
                    digest: Digest::of(&l.envelope_json).to_string(),
                    size: l.envelope_json.len() as u64,
                    annotations: [
                        (ANNOTATION_ENTRY_INDEX.to_string(), l.entry_index.to_string()),
                        (ANNOTATION_ENTRY_HASH.to_string(), l.entry_hash.clone()),
                    ]
                    .into(),
                    ..Descriptor::default()
                });
            }
            let doc = ManifestDoc {
                subject: Some(subject.descriptor()),
                ..ManifestDoc::artifact(
                    ATTESTATIONS_ARTIFACT_TYPE,
                    descriptors,
                    [(ANNOTATION_GENESIS.to_string(), genesis.to_string())].into(),
                )
            };
            let artifact = Manifest::written(doc);
            self.push_manifest(image, Target::Digest(artifact.digest), &artifact).await?;
            let scheme = self.register_referrer(image, &subject, &artifact).await?;
            Ok((artifact.digest, scheme))
        })
    }

    /// Every DSSE layer of every attestation artifact that names
    /// `image@digest` as its subject, each distinct layer once. Artifacts
    /// naming another subject are skipped; each layer is read with its size
    /// bounded and its hash checked.
    pub fn attestations(&self, image: &ImageRef, digest: Digest) -> Result<Vec<FetchedLayer>, RegistryError> {
        self.block_on(async {
            let mut out = Vec::new();
            let mut seen = std::collections::BTreeSet::new();
            for artifact in self.referrer_manifests(image, digest).await? {
                for (i, layer) in artifact.doc.layers.iter().flatten().enumerate() {
                    // An envelope attached again in a later artifact is read once.
                    if layer.media_type != DSSE_ENVELOPE || !seen.insert(layer.digest.clone()) {
                        continue;
                    }
                    let bytes = self.pull_blob(image, layer, MAX_ENVELOPE_LEN).await?;
                    out.push(FetchedLayer { artifact: artifact.digest, layer: i, bytes });
                }
            }
            Ok(out)
        })
    }

    /// The ledger published under `image`'s tag, if any. The listing must
    /// be contiguous from entry 0; the checkpoint is returned unverified.
    pub fn published_ledger(&self, image: &ImageRef) -> Result<Option<PublishedLedger>, RegistryError> {
        let tag = image.tag().unwrap_or("latest");
        let m = match self.manifest(image, Target::Tag(tag)) {
            Ok(m) => m,
            Err(RegistryError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let what = format!("{}:{tag}", image.name());
        if m.doc.artifact_type.as_deref() != Some(LEDGER_ARTIFACT_TYPE) {
            return Err(protocol(&what, format!("not a published ledger (artifactType {:?})", m.doc.artifact_type)));
        }
        let annotation = |key: &str| {
            m.doc
                .annotations
                .get(key)
                .cloned()
                .ok_or_else(|| protocol(&what, format!("manifest lacks annotation {key}")))
        };
        let checkpoint = annotation(ANNOTATION_CHECKPOINT)?;
        let genesis = annotation(ANNOTATION_GENESIS)?;
        let layers = m.doc.layers.as_deref().unwrap_or_default();
        if layers.len() > MAX_LEDGER_BLOBS {
            return Err(protocol(&what, format!("more than {MAX_LEDGER_BLOBS} blobs")));
        }
        let mut chunks = Vec::with_capacity(layers.len());
        let mut next = 0u64;
        for (i, l) in layers.iter().enumerate() {
            let number = |key: &str| -> Result<u64, RegistryError> {
                l.annotations
                    .get(key)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| protocol(&what, format!("blob {i}: annotation {key} is missing or not a number")))
            };
            let (start, count) = (number(ANNOTATION_ENTRIES_START)?, number(ANNOTATION_ENTRIES_COUNT)?);
            if l.media_type != LEDGER_ENTRIES || start != next || count == 0 {
                return Err(protocol(&what, format!("blob {i} is not entries {next}.. (it says {start}, {count})")));
            }
            let digest = l.digest.parse().map_err(|e| protocol(&what, format!("blob {i}: {e}")))?;
            chunks.push(LedgerChunk { start, count, digest, size: l.size });
            next = start + count;
        }
        Ok(Some(PublishedLedger { manifest: m.digest, checkpoint, genesis, chunks }))
    }

    /// Pushes one blob of entries (`bytes`, framed) unless the repository has it.
    pub fn push_ledger_blob(
        &self,
        image: &ImageRef,
        start: u64,
        count: u64,
        bytes: &[u8],
    ) -> Result<LedgerChunk, RegistryError> {
        self.block_on(self.push_blob(image, bytes))?;
        Ok(LedgerChunk { start, count, digest: Digest::of(bytes), size: bytes.len() as u64 })
    }

    /// Publishes a ledger under `image`'s tag: one manifest listing `chunks`,
    /// carrying the checkpoint note and the genesis hash.
    pub fn push_ledger_manifest(
        &self,
        image: &ImageRef,
        checkpoint: &str,
        genesis: &str,
        chunks: &[LedgerChunk],
    ) -> Result<Digest, RegistryError> {
        self.block_on(async {
            self.push_blob(image, b"{}").await?;
            let layers = chunks
                .iter()
                .map(|c| Descriptor {
                    media_type: LEDGER_ENTRIES.to_string(),
                    digest: c.digest.to_string(),
                    size: c.size,
                    annotations: [
                        (ANNOTATION_ENTRIES_START.to_string(), c.start.to_string()),
                        (ANNOTATION_ENTRIES_COUNT.to_string(), c.count.to_string()),
                    ]
                    .into(),
                    ..Descriptor::default()
                })
                .collect();
            let doc = ManifestDoc::artifact(
                LEDGER_ARTIFACT_TYPE,
                layers,
                [
                    (ANNOTATION_CHECKPOINT.to_string(), checkpoint.to_string()),
                    (ANNOTATION_GENESIS.to_string(), genesis.to_string()),
                ]
                .into(),
            );
            let m = Manifest::written(doc);
            self.push_manifest(image, Target::Tag(image.tag().unwrap_or("latest")), &m).await?;
            Ok(m.digest)
        })
    }

    /// Reads one blob of a published ledger, its size bounded and its hash checked.
    pub fn ledger_chunk(&self, image: &ImageRef, chunk: &LedgerChunk) -> Result<Vec<u8>, RegistryError> {
        let d = Descriptor {
            media_type: LEDGER_ENTRIES.to_string(),
            digest: chunk.digest.to_string(),
            size: chunk.size,
            ..Descriptor::default()
        };
        let bytes = self.block_on(self.pull_blob(image, &d, MAX_LEDGER_BLOB_LEN))?;
        if Digest::of(&bytes) != chunk.digest {
            return Err(RegistryError::DigestMismatch {
                reference: format!("{}@{}", image.name(), chunk.digest),
                detail: format!("the blob hashes to {}", Digest::of(&bytes)),
            });
        }
        Ok(bytes)
    }

    // ------------------------------------------------------------ internals

    fn reference(image: &ImageRef, target: &Target<'_>) -> Reference {
        let (registry, repository) = (image.registry().to_string(), image.repository().to_string());
        match target {
            Target::Tag(t) => Reference::with_tag(registry, repository, t.to_string()),
            Target::Digest(d) => Reference::with_digest(registry, repository, d.to_string()),
        }
    }

    fn describe(image: &ImageRef, target: &Target<'_>) -> String {
        match target {
            Target::Tag(t) => format!("{}:{t}", image.name()),
            Target::Digest(d) => format!("{}@{d}", image.name()),
        }
    }

    /// Maps a client error to what the ledger reports.
    fn error(image: &ImageRef, what: &str, e: OciDistributionError) -> RegistryError {
        let host = image.registry().to_string();
        match e {
            OciDistributionError::RequestError(r) => RegistryError::Unreachable { host, detail: chain(&r) },
            OciDistributionError::ServerError { code: 404, .. }
            | OciDistributionError::ImageManifestNotFoundError(_) => {
                RegistryError::NotFound { reference: what.to_string() }
            }
            OciDistributionError::RegistryError { envelope, .. }
                if envelope.errors.iter().any(|e| {
                    matches!(
                        e.code,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::BlobUnknown
                            | OciErrorCode::NotFound
                    )
                }) =>
            {
                RegistryError::NotFound { reference: what.to_string() }
            }
            OciDistributionError::RegistryError { envelope, .. }
                if envelope
                    .errors
                    .iter()
                    .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)) =>
            {
                RegistryError::Unauthorized { host, detail: envelope.to_string() }
            }
            e @ (OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_)
            | OciDistributionError::ServerError { code: 401 | 403, .. }) => {
                RegistryError::Unauthorized { host, detail: chain(&e) }
            }
            e @ OciDistributionError::DigestError(_) => {
                RegistryError::DigestMismatch { reference: what.to_string(), detail: chain(&e) }
            }
            e => protocol(what, chain(&e)),
        }
    }

    /// The credentials for the image's registry, looked up once per host.
    fn credentials_for(&self, image: &ImageRef) -> RegistryAuth {
        let mut known = self.credentials.lock().unwrap_or_else(|e| e.into_inner());
        known.entry(image.registry().to_string()).or_insert_with(|| credentials(image.registry())).clone()
    }

    /// Hands the client the registry's credentials. Each request then gets
    /// its pull or push token (or basic credentials) from the client's
    /// cache, asking the token service only on the first use.
    async fn authenticate(&self, image: &ImageRef) {
        let reference = Self::reference(image, &Target::Tag("latest"));
        self.client.store_auth_if_needed(reference.resolve_registry(), &self.credentials_for(image)).await;
    }

    async fn manifest_async(&self, image: &ImageRef, target: Target<'_>) -> Result<Manifest, RegistryError> {
        let what = Self::describe(image, &target);
        self.authenticate(image).await;
        let reference = Self::reference(image, &target);
        let (bytes, served) = self
            .client
            .pull_manifest_raw(&reference, &self.credentials_for(image), &MANIFEST_TYPES)
            .await
            .map_err(|e| Self::error(image, &what, e))?;
        if bytes.len() > MAX_MANIFEST_LEN {
            return Err(protocol(&what, format!("manifest larger than {MAX_MANIFEST_LEN} bytes")));
        }
        // oci-client checked the bytes against the digest header and the
        // requested digest; the ledger computes its own and requires sha256.
        let digest = Digest::of(&bytes);
        if served != digest.to_string() {
            return Err(RegistryError::DigestMismatch {
                reference: what,
                detail: format!("the registry names {served}, the bytes hash to {digest}"),
            });
        }
        if let Target::Digest(asked) = target
            && asked != digest
        {
            return Err(RegistryError::DigestMismatch {
                reference: what,
                detail: format!("asked for {asked}, the bytes hash to {digest}"),
            });
        }
        let doc: ManifestDoc = serde_json::from_slice(&bytes)
            .map_err(|e| protocol(&what, format!("manifest is not a valid OCI/Docker manifest: {e}")))?;
        if doc.schema_version != 2 {
            return Err(protocol(&what, format!("manifest schemaVersion {} (only 2 is read)", doc.schema_version)));
        }
        let media_type = doc.declared_type().to_string();
        if !MANIFEST_TYPES.contains(&media_type.as_str()) {
            return Err(protocol(&what, format!("unsupported manifest media type {media_type}")));
        }
        Ok(Manifest { digest, media_type, bytes: bytes.to_vec(), doc })
    }

    async fn platforms(&self, image: &ImageRef, manifest: &Manifest) -> Result<Vec<PlatformManifest>, RegistryError> {
        let what = format!("{}@{}", image.name(), manifest.digest);
        let doc = &manifest.doc;
        if manifest.is_index() {
            let children = doc.manifests.as_deref().unwrap_or_default();
            if children.len() > MAX_PLATFORMS {
                return Err(protocol(&what, format!("index lists more than {MAX_PLATFORMS} manifests")));
            }
            let mut out = Vec::new();
            for child in children {
                // Attestation manifests that build tools add to an index name
                // the platform unknown/unknown; they are not platforms.
                let Some(p) = child.platform.as_ref().filter(|p| p.os != "unknown" && p.architecture != "unknown")
                else {
                    continue;
                };
                let d: Digest = child.digest.parse().map_err(|e| protocol(&what, format!("platform manifest: {e}")))?;
                // Each platform manifest must exist and hash to its digest.
                self.manifest_async(image, Target::Digest(d)).await?;
                out.push(PlatformManifest {
                    digest: d.to_string(),
                    os: p.os.clone(),
                    architecture: p.architecture.clone(),
                    variant: p.variant.clone(),
                });
            }
            return Ok(out);
        }
        let Some(config) = doc.config.as_ref().filter(|c| c.size as usize <= MAX_CONFIG_LEN) else {
            return Ok(Vec::new());
        };
        let bytes = self.pull_blob(image, config, MAX_CONFIG_LEN).await?;
        let Ok(c) = serde_json::from_slice::<ImageConfig>(&bytes) else {
            return Ok(Vec::new());
        };
        if c.os.is_empty() || c.architecture.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![PlatformManifest {
            digest: manifest.digest.to_string(),
            os: c.os,
            architecture: c.architecture,
            variant: c.variant,
        }])
    }

    async fn pull_blob(&self, image: &ImageRef, blob: &Descriptor, limit: usize) -> Result<Vec<u8>, RegistryError> {
        let what = format!("{}@{}", image.name(), blob.digest);
        if blob.size as usize > limit {
            return Err(protocol(&what, format!("blob of {} bytes is larger than {limit}", blob.size)));
        }
        let reference = Self::reference(image, &Target::Tag("latest"));
        let mut out = Limited { buf: Vec::new(), limit };
        self.client
            .pull_blob(&reference, blob.digest.as_str(), &mut out)
            .await
            .map_err(|e| Self::error(image, &what, e))?;
        if out.buf.len() as u64 != blob.size {
            return Err(protocol(&what, format!("blob is {} bytes, its descriptor says {}", out.buf.len(), blob.size)));
        }
        Ok(out.buf)
    }

    async fn push_blob(&self, image: &ImageRef, bytes: &[u8]) -> Result<(), RegistryError> {
        let digest = Digest::of(bytes).to_string();
        self.authenticate(image).await;
        let reference = Self::reference(image, &Target::Tag("latest"));
        let what = format!("{}@{digest}", image.name());
        if self.client.blob_exists(&reference, &digest).await.map_err(|e| Self::error(image, &what, e))? {
            return Ok(());
        }
        self.client.push_blob(&reference, bytes.to_vec(), &digest).await.map_err(|e| Self::error(image, &what, e))?;
        Ok(())
    }

    async fn push_manifest(&self, image: &ImageRef, target: Target<'_>, m: &Manifest) -> Result<(), RegistryError> {
        let what = Self::describe(image, &target);
        self.authenticate(image).await;
        let content_type = m.media_type.parse().map_err(|_| protocol(&what, "media type is not a header value"))?;
        self.client
            .push_manifest_raw(&Self::reference(image, &target), m.bytes.clone(), content_type)
            .await
            .map_err(|e| Self::error(image, &what, e))?;
        Ok(())
    }

    /// Makes every blob and platform manifest of `manifest` present in
    /// `to`'s repository: mounted from `from`'s where the registry can,
    /// copied otherwise.
    async fn copy_content(&self, from: &ImageRef, to: &ImageRef, manifest: &Manifest) -> Result<(), RegistryError> {
        let what = format!("{}@{}", from.name(), manifest.digest);
        let doc = &manifest.doc;
        if manifest.is_index() {
            for child in doc.manifests.iter().flatten() {
                let d: Digest = child.digest.parse().map_err(|e| protocol(&what, format!("index entry: {e}")))?;
                let m = self.manifest_async(from, Target::Digest(d)).await?;
                Box::pin(self.copy_content(from, to, &m)).await?;
                self.push_manifest(to, Target::Digest(d), &m).await?;
            }
            return Ok(());
        }
        self.authenticate(to).await;
        let target = Self::reference(to, &Target::Tag("latest"));
        let source = Self::reference(from, &Target::Tag("latest"));
        for blob in doc.blobs() {
            let what = format!("{}@{}", to.name(), blob.digest);
            if self.client.blob_exists(&target, &blob.digest).await.map_err(|e| Self::error(to, &what, e))? {
                continue;
            }
            if self.client.mount_blob(&target, &source, &blob.digest).await.is_ok() {
                continue;
            }
            let mut out = Limited { buf: Vec::new(), limit: usize::MAX };
            self.client
                .pull_blob(&source, blob.digest.as_str(), &mut out)
                .await
                .map_err(|e| Self::error(from, &what, e))?;
            self.client.push_blob(&target, out.buf, &blob.digest).await.map_err(|e| Self::error(to, &what, e))?;
        }
        Ok(())
    }

    /// The attestation artifacts listed as referrers of `image@digest`, each
    /// read by digest, hash-checked, and naming that subject.
    async fn referrer_manifests(&self, image: &ImageRef, digest: Digest) -> Result<Vec<Manifest>, RegistryError> {
        let what = format!("{}@{digest}", image.name());
        self.authenticate(image).await;
        let index = self
            .client
            .pull_referrers(&Self::reference(image, &Target::Digest(digest)), Some(ATTESTATIONS_ARTIFACT_TYPE))
            .await
            .map_err(|e| Self::error(image, &what, e))?;
        let mut out = Vec::new();
        for entry in index.manifests {
            let d: Digest = entry.digest.parse().map_err(|e| protocol(&what, format!("referrer: {e}")))?;
            let m = self.manifest_async(image, Target::Digest(d)).await?;
            let names_subject = m.doc.subject.as_ref().is_some_and(|s| s.digest == digest.to_string());
            if names_subject && m.doc.artifact_type.as_deref() == Some(ATTESTATIONS_ARTIFACT_TYPE) {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Lists `artifact` as a referrer of `subject`: nothing to do where the
    /// referrers API already lists it; otherwise it is added to the index
    /// under the `sha256-<hex>` tag.
    async fn register_referrer(
        &self,
        image: &ImageRef,
        subject: &Manifest,
        artifact: &Manifest,
    ) -> Result<ReferrersScheme, RegistryError> {
        let what = format!("{}@{}", image.name(), subject.digest);
        let listed = self
            .client
            .pull_referrers(&Self::reference(image, &Target::Digest(subject.digest)), None)
            .await
            .map_err(|e| Self::error(image, &what, e))?;
        let tag = format!("sha256-{}", subject.digest.hex());
        let tagged = match self.manifest_async(image, Target::Tag(&tag)).await {
            Ok(m) => Some(m),
            Err(RegistryError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let listed_here = listed.manifests.iter().any(|m| m.digest == artifact.digest.to_string());
        if listed_here && tagged.is_none() {
            return Ok(ReferrersScheme::Api);
        }
        let mut doc = match tagged {
            Some(m) => m.doc,
            None => ManifestDoc {
                schema_version: 2,
                media_type: Some(OCI_INDEX.to_string()),
                manifests: Some(Vec::new()),
                ..ManifestDoc::default()
            },
        };
        let entries = doc.manifests.get_or_insert_with(Vec::new);
        if !entries.iter().any(|m| m.digest == artifact.digest.to_string()) {
            entries.push(Descriptor {
                artifact_type: artifact.doc.artifact_type.clone(),
                annotations: artifact.doc.annotations.clone(),
                ..artifact.descriptor()
            });
            self.push_manifest(image, Target::Tag(&tag), &Manifest::written(doc)).await?;
        }
        Ok(ReferrersScheme::TagSchema)
    }
}

/// Credentials for `host`: [`USERNAME_ENV`] / [`PASSWORD_ENV`], else the
/// Docker config (`$DOCKER_CONFIG` or `~/.docker/config.json`, credential
/// helpers included), else anonymous. oci-client exchanges them for a bearer
/// token where the registry asks for one.
pub fn credentials(host: &str) -> RegistryAuth {
    if let (Ok(user), Ok(password)) = (std::env::var(USERNAME_ENV), std::env::var(PASSWORD_ENV)) {
        return RegistryAuth::Basic(user, password);
    }
    match docker_credential::get_credential(host) {
        Ok(docker_credential::DockerCredential::UsernamePassword(user, password)) => {
            RegistryAuth::Basic(user, password)
        }
        Ok(docker_credential::DockerCredential::IdentityToken(token)) => RegistryAuth::Bearer(token),
        Err(_) => RegistryAuth::Anonymous,
    }
}

/// A byte sink that refuses to grow past `limit`.
struct Limited {
    buf: Vec<u8>,
    limit: usize,
}

impl tokio::io::AsyncWrite for Limited {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        if self.buf.len() + data.len() > self.limit {
            let limit = self.limit;
            return Poll::Ready(Err(std::io::Error::other(format!("blob larger than {limit} bytes"))));
        }
        self.buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
