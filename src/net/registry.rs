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
//!
//! Manifests, indexes and descriptors are oci-spec's image types, kept
//! private like oci-client's; only our own media types and annotations are
//! defined here.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use oci_spec::image::{Arch, Descriptor, ImageIndex, ImageManifest, ImageManifestBuilder, MediaType};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::core::digest::Digest;
use crate::core::image_ref::ImageRef;
use crate::core::statement::PlatformManifest;

/// Docker's manifest list and image manifest, which registries still serve
/// beside the OCI index and image manifest.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// `artifactType` of the artifact that carries a digest's DSSE envelopes.
pub const ATTESTATIONS_ARTIFACT_TYPE: &str = "application/vnd.provledger.attestations.v1+json";
/// Artifact type of an in-toto statement attached on its own (a
/// verification summary), its one layer a DSSE envelope.
pub const STATEMENT_ARTIFACT_TYPE: &str = "application/vnd.in-toto+json";
/// The predicate type of the statement, on the layer and the artifact.
pub const ANNOTATION_PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
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
        matches!(self.doc, ManifestDoc::Index(_))
    }

    /// A manifest the ledger writes: `doc`'s bytes and their digest.
    fn written(doc: ManifestDoc) -> Manifest {
        let bytes = doc.to_bytes();
        let media_type = doc.declared_type().to_string();
        Manifest { digest: Digest::of(&bytes), media_type, bytes, doc }
    }

    fn descriptor(&self) -> Descriptor {
        Descriptor::new(MediaType::from(self.media_type.as_str()), self.bytes.len() as u64, oci_digest(self.digest))
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

/// One layer to push: its bytes and its annotations.
type LayerOut<'a> = (&'a [u8], Vec<(&'static str, String)>);

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

/// The media types the ledger reads as a manifest, in preference order
/// (the `Accept` header).
fn manifest_types() -> [MediaType; 4] {
    [
        MediaType::ImageIndex,
        MediaType::ImageManifest,
        MediaType::Other(DOCKER_MANIFEST_LIST.to_string()),
        MediaType::Other(DOCKER_MANIFEST.to_string()),
    ]
}

/// Whether a manifest of media type `t` lists other manifests (an OCI index
/// or a Docker manifest list); `None` for a type the ledger does not read.
fn lists_manifests(t: &MediaType) -> Option<bool> {
    match t {
        MediaType::ImageIndex => Some(true),
        MediaType::ImageManifest => Some(false),
        MediaType::Other(t) if t == DOCKER_MANIFEST_LIST => Some(true),
        MediaType::Other(t) if t == DOCKER_MANIFEST => Some(false),
        _ => None,
    }
}

/// The OCI form of one of our digests (always sha256, which OCI knows).
fn oci_digest(d: Digest) -> oci_spec::image::Digest {
    d.to_string().parse().expect("a sha256 digest is an OCI digest")
}

/// The architecture child `i` of an index states, as the index states it.
/// oci-spec 0.10 reads both `armbe` and `arm64be` as `Arch::ARM64be` and
/// writes it back as `arm64be`; a record must carry what the registry
/// published, so for that one value the index's own text is read.
fn stated_architecture(index: &[u8], i: usize, parsed: &Arch) -> String {
    if *parsed != Arch::ARM64be {
        return parsed.to_string();
    }
    let raw: Option<String> = serde_json::from_slice::<serde_json::Value>(index)
        .ok()
        .and_then(|v| v["manifests"][i]["platform"]["architecture"].as_str().map(str::to_string));
    raw.unwrap_or_else(|| parsed.to_string())
}

/// A descriptor of one of our blobs, with our media type and annotations.
fn own_descriptor(media_type: &str, digest: Digest, size: u64, annotations: &[(&str, String)]) -> Descriptor {
    let mut d = Descriptor::new(MediaType::Other(media_type.to_string()), size, oci_digest(digest));
    d.set_annotations(Some(annotations.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()));
    d
}

/// What a manifest says it is, read before the rest of it: which of
/// oci-spec's two types to read it as depends on its declared media type
/// (or, when it declares none, on its shape).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Declared {
    schema_version: u32,
    #[serde(default)]
    media_type: Option<MediaType>,
    #[serde(default)]
    manifests: Option<serde::de::IgnoredAny>,
}

/// An image manifest or an index (OCI or Docker), as oci-spec reads them:
/// unknown fields are ignored (registries add their own), descriptors must
/// have a media type, a well-formed digest and a size.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
enum ManifestDoc {
    Image(Box<ImageManifest>),
    Index(Box<ImageIndex>),
}

impl ManifestDoc {
    /// Reads a manifest the registry served: `schemaVersion` 2, a media type
    /// of [`manifest_types`], and the fields that type requires.
    fn parse(what: &str, bytes: &[u8]) -> Result<ManifestDoc, RegistryError> {
        let invalid =
            |e: serde_json::Error| protocol(what, format!("manifest is not a valid OCI/Docker manifest: {e}"));
        let declared: Declared = serde_json::from_slice(bytes).map_err(invalid)?;
        if declared.schema_version != 2 {
            return Err(protocol(what, format!("manifest schemaVersion {} (only 2 is read)", declared.schema_version)));
        }
        let media_type = declared.media_type.unwrap_or(if declared.manifests.is_some() {
            MediaType::ImageIndex
        } else {
            MediaType::ImageManifest
        });
        match lists_manifests(&media_type) {
            Some(true) => Ok(ManifestDoc::Index(serde_json::from_slice(bytes).map_err(invalid)?)),
            Some(false) => Ok(ManifestDoc::Image(serde_json::from_slice(bytes).map_err(invalid)?)),
            None => Err(protocol(what, format!("unsupported manifest media type {media_type}"))),
        }
    }

    /// An OCI 1.1 artifact manifest: `artifact_type`, the empty config
    /// (whose blob `{}` the pusher pushes first), `layers`, `annotations`.
    fn artifact(
        artifact_type: &str,
        layers: Vec<Descriptor>,
        annotations: HashMap<String, String>,
        subject: Option<Descriptor>,
    ) -> ManifestDoc {
        let mut builder = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .artifact_type(MediaType::Other(artifact_type.to_string()))
            .config(Descriptor::new(MediaType::EmptyJSON, 2, oci_digest(Digest::of(b"{}"))))
            .layers(layers)
            .annotations(annotations);
        if let Some(s) = subject {
            builder = builder.subject(s);
        }
        ManifestDoc::Image(Box::new(builder.build().expect("every required field is set")))
    }

    /// The bytes of a manifest the ledger writes. oci-spec keeps annotations
    /// in a `HashMap`, whose order changes from one run to the next; written
    /// with every object's keys sorted (the image spec's canonical JSON), the
    /// same content is always the same bytes, so the same digest.
    fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_value(self).expect("manifest serialises");
        v.sort_all_objects();
        serde_json::to_vec(&v).expect("manifest serialises")
    }

    /// The media type a manifest declares, or the one its shape implies.
    fn declared_type(&self) -> MediaType {
        match self {
            ManifestDoc::Image(m) => m.media_type().clone().unwrap_or(MediaType::ImageManifest),
            ManifestDoc::Index(i) => i.media_type().clone().unwrap_or(MediaType::ImageIndex),
        }
    }

    fn artifact_type(&self) -> Option<&MediaType> {
        match self {
            ManifestDoc::Image(m) => m.artifact_type().as_ref(),
            ManifestDoc::Index(i) => i.artifact_type().as_ref(),
        }
    }

    fn subject(&self) -> Option<&Descriptor> {
        match self {
            ManifestDoc::Image(m) => m.subject().as_ref(),
            ManifestDoc::Index(i) => i.subject().as_ref(),
        }
    }

    fn annotations(&self) -> Option<&HashMap<String, String>> {
        match self {
            ManifestDoc::Image(m) => m.annotations().as_ref(),
            ManifestDoc::Index(i) => i.annotations().as_ref(),
        }
    }

    /// An image manifest's layers (none for an index).
    fn layers(&self) -> &[Descriptor] {
        match self {
            ManifestDoc::Image(m) => m.layers(),
            ManifestDoc::Index(_) => &[],
        }
    }

    /// Every blob an image manifest references (none for an index).
    fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        let config = match self {
            ManifestDoc::Image(m) => Some(m.config()),
            ManifestDoc::Index(_) => None,
        };
        config.into_iter().chain(self.layers())
    }
}

/// The platform of an image config, and nothing else of it, read leniently:
/// a config that states no platform (or is not an image config at all) gives
/// none. oci-spec's `ImageConfiguration` is the whole config (its rootfs is
/// required, its runtime config parsed), more than the platform needs.
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
        // Before the client: reqwest panics when no provider is installed.
        crate::net::tls_provider();
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(options.insecure.clone()),
            connect_timeout: Some(options.timeout),
            read_timeout: Some(options.timeout),
            platform_resolver: None,
            user_agent: concat!("provledger/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        // Not `Client::new`, which on an error logs a warning and goes on
        // with the default configuration: HTTPS to every registry, no timeouts.
        let client = Client::try_from(config)
            .map_err(|e| protocol("registry client", format!("cannot be configured: {}", chain(&e))))?;
        Ok(Registry { client, runtime: runtime()?, credentials: Default::default() })
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
        let layers: Vec<LayerOut<'_>> = layers
            .iter()
            .map(|l| {
                let notes = vec![
                    (ANNOTATION_ENTRY_INDEX, l.entry_index.to_string()),
                    (ANNOTATION_ENTRY_HASH, l.entry_hash.clone()),
                ];
                (l.envelope_json.as_slice(), notes)
            })
            .collect();
        let notes = [(ANNOTATION_GENESIS.to_string(), genesis.to_string())].into();
        self.block_on(self.push_referrer(image, digest, ATTESTATIONS_ARTIFACT_TYPE, &layers, notes))
    }

    /// Pushes `envelope_json`, a DSSE envelope of an in-toto statement of
    /// `predicate_type` about `image@digest` (a verification summary), as an
    /// artifact of its own referring to the image, so that tools reading
    /// in-toto attestations from referrers find it by its predicate type.
    pub fn attach_statement(
        &self,
        image: &ImageRef,
        digest: Digest,
        envelope_json: &[u8],
        predicate_type: &str,
        genesis: &str,
    ) -> Result<(Digest, ReferrersScheme), RegistryError> {
        let layers = [(envelope_json, vec![(ANNOTATION_PREDICATE_TYPE, predicate_type.to_string())])];
        let notes = [
            (ANNOTATION_PREDICATE_TYPE.to_string(), predicate_type.to_string()),
            (ANNOTATION_GENESIS.to_string(), genesis.to_string()),
        ]
        .into();
        self.block_on(self.push_referrer(image, digest, STATEMENT_ARTIFACT_TYPE, &layers, notes))
    }

    /// The DSSE envelopes of in-toto statements of `predicate_type` attached
    /// to `image@digest` by [`Registry::attach_statement`], each read with
    /// its size bounded and its hash checked (not verified: the caller
    /// checks the signature with the key it trusts).
    pub fn statements(
        &self,
        image: &ImageRef,
        digest: Digest,
        predicate_type: &str,
    ) -> Result<Vec<FetchedLayer>, RegistryError> {
        self.block_on(async {
            let mut out = Vec::new();
            for artifact in self.referrers_of_type(image, digest, STATEMENT_ARTIFACT_TYPE).await? {
                let annotated = artifact.doc.annotations().and_then(|a| a.get(ANNOTATION_PREDICATE_TYPE));
                if annotated.map(String::as_str) != Some(predicate_type) {
                    continue;
                }
                for (i, layer) in artifact.doc.layers().iter().enumerate() {
                    if layer.media_type().as_ref() == DSSE_ENVELOPE {
                        let bytes = self.pull_blob(image, layer, MAX_ENVELOPE_LEN).await?;
                        out.push(FetchedLayer { artifact: artifact.digest, layer: i, bytes });
                    }
                }
            }
            Ok(out)
        })
    }

    /// Pushes `layers` (DSSE envelopes, each with its annotations) as one
    /// artifact of `artifact_type` whose subject is `image@digest`, and
    /// lists it as a referrer.
    async fn push_referrer(
        &self,
        image: &ImageRef,
        digest: Digest,
        artifact_type: &str,
        layers: &[LayerOut<'_>],
        annotations: std::collections::BTreeMap<String, String>,
    ) -> Result<(Digest, ReferrersScheme), RegistryError> {
        let subject = self.manifest_async(image, Target::Digest(digest)).await?;
        self.push_blob(image, b"{}").await?;
        let mut descriptors = Vec::with_capacity(layers.len());
        for (bytes, notes) in layers {
            self.push_blob(image, bytes).await?;
            descriptors.push(own_descriptor(DSSE_ENVELOPE, Digest::of(bytes), bytes.len() as u64, notes));
        }
        let artifact = Manifest::written(ManifestDoc::artifact(
            artifact_type,
            descriptors,
            annotations.into_iter().collect(),
            Some(subject.descriptor()),
        ));
        self.push_manifest(image, Target::Digest(artifact.digest), &artifact).await?;
        let scheme = self.register_referrer(image, &subject, &artifact).await?;
        Ok((artifact.digest, scheme))
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
                for (i, layer) in artifact.doc.layers().iter().enumerate() {
                    // An envelope attached again in a later artifact is read once.
                    if layer.media_type().as_ref() != DSSE_ENVELOPE || !seen.insert(layer.digest().to_string()) {
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
        let artifact_type = m.doc.artifact_type().map(MediaType::to_string);
        if artifact_type.as_deref() != Some(LEDGER_ARTIFACT_TYPE) {
            return Err(protocol(&what, format!("not a published ledger (artifactType {artifact_type:?})")));
        }
        let annotation = |key: &str| {
            m.doc
                .annotations()
                .and_then(|a| a.get(key))
                .cloned()
                .ok_or_else(|| protocol(&what, format!("manifest lacks annotation {key}")))
        };
        let checkpoint = annotation(ANNOTATION_CHECKPOINT)?;
        let genesis = annotation(ANNOTATION_GENESIS)?;
        let layers = m.doc.layers();
        if layers.len() > MAX_LEDGER_BLOBS {
            return Err(protocol(&what, format!("more than {MAX_LEDGER_BLOBS} blobs")));
        }
        let mut chunks = Vec::with_capacity(layers.len());
        let mut next = 0u64;
        for (i, l) in layers.iter().enumerate() {
            let number =
                |key: &str| -> Result<u64, RegistryError> {
                    l.annotations().as_ref().and_then(|a| a.get(key)).and_then(|v| v.parse().ok()).ok_or_else(|| {
                        protocol(&what, format!("blob {i}: annotation {key} is missing or not a number"))
                    })
                };
            let (start, count) = (number(ANNOTATION_ENTRIES_START)?, number(ANNOTATION_ENTRIES_COUNT)?);
            if l.media_type().as_ref() != LEDGER_ENTRIES || start != next || count == 0 {
                return Err(protocol(&what, format!("blob {i} is not entries {next}.. (it says {start}, {count})")));
            }
            let digest = l.digest().as_ref().parse().map_err(|e| protocol(&what, format!("blob {i}: {e}")))?;
            chunks.push(LedgerChunk { start, count, digest, size: l.size() });
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
                .map(|c| {
                    own_descriptor(
                        LEDGER_ENTRIES,
                        c.digest,
                        c.size,
                        &[
                            (ANNOTATION_ENTRIES_START, c.start.to_string()),
                            (ANNOTATION_ENTRIES_COUNT, c.count.to_string()),
                        ],
                    )
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
                None,
            );
            let m = Manifest::written(doc);
            self.push_manifest(image, Target::Tag(image.tag().unwrap_or("latest")), &m).await?;
            Ok(m.digest)
        })
    }

    /// Reads one blob of a published ledger, its size bounded and its hash checked.
    pub fn ledger_chunk(&self, image: &ImageRef, chunk: &LedgerChunk) -> Result<Vec<u8>, RegistryError> {
        let d = Descriptor::new(MediaType::Other(LEDGER_ENTRIES.to_string()), chunk.size, oci_digest(chunk.digest));
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
        let types = manifest_types();
        let accept: Vec<&str> = types.iter().map(AsRef::as_ref).collect();
        let (bytes, served) = self
            .client
            .pull_manifest_raw(&reference, &self.credentials_for(image), &accept)
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
        let doc = ManifestDoc::parse(&what, &bytes)?;
        let media_type = doc.declared_type().to_string();
        Ok(Manifest { digest, media_type, bytes: bytes.to_vec(), doc })
    }

    async fn platforms(&self, image: &ImageRef, manifest: &Manifest) -> Result<Vec<PlatformManifest>, RegistryError> {
        let what = format!("{}@{}", image.name(), manifest.digest);
        let config = match &manifest.doc {
            ManifestDoc::Image(m) => m.config(),
            ManifestDoc::Index(index) => {
                let children = index.manifests();
                if children.len() > MAX_PLATFORMS {
                    return Err(protocol(&what, format!("index lists more than {MAX_PLATFORMS} manifests")));
                }
                let mut out = Vec::new();
                for (i, child) in children.iter().enumerate() {
                    // Attestation manifests that build tools add to an index
                    // name the platform unknown/unknown; they are not platforms.
                    let Some(p) = child
                        .platform()
                        .as_ref()
                        .filter(|p| p.os().to_string() != "unknown" && p.architecture().to_string() != "unknown")
                    else {
                        continue;
                    };
                    let d: Digest = child
                        .digest()
                        .as_ref()
                        .parse()
                        .map_err(|e| protocol(&what, format!("platform manifest: {e}")))?;
                    // Each platform manifest must exist and hash to its digest.
                    self.manifest_async(image, Target::Digest(d)).await?;
                    out.push(PlatformManifest {
                        digest: d.to_string(),
                        os: p.os().to_string(),
                        architecture: stated_architecture(&manifest.bytes, i, p.architecture()),
                        variant: p.variant().clone(),
                    });
                }
                return Ok(out);
            }
        };
        if config.size() as usize > MAX_CONFIG_LEN {
            return Ok(Vec::new());
        }
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
        let what = format!("{}@{}", image.name(), blob.digest());
        if blob.size() as usize > limit {
            return Err(protocol(&what, format!("blob of {} bytes is larger than {limit}", blob.size())));
        }
        let reference = Self::reference(image, &Target::Tag("latest"));
        let mut out = Limited { buf: Vec::new(), limit };
        self.client
            .pull_blob(&reference, blob.digest().as_ref(), &mut out)
            .await
            .map_err(|e| Self::error(image, &what, e))?;
        if out.buf.len() as u64 != blob.size() {
            return Err(protocol(
                &what,
                format!("blob is {} bytes, its descriptor says {}", out.buf.len(), blob.size()),
            ));
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
        if let ManifestDoc::Index(index) = &manifest.doc {
            for child in index.manifests() {
                let d: Digest =
                    child.digest().as_ref().parse().map_err(|e| protocol(&what, format!("index entry: {e}")))?;
                let m = self.manifest_async(from, Target::Digest(d)).await?;
                Box::pin(self.copy_content(from, to, &m)).await?;
                self.push_manifest(to, Target::Digest(d), &m).await?;
            }
            return Ok(());
        }
        self.authenticate(to).await;
        let target = Self::reference(to, &Target::Tag("latest"));
        let source = Self::reference(from, &Target::Tag("latest"));
        for blob in manifest.doc.blobs() {
            let digest = blob.digest().as_ref();
            let what = format!("{}@{digest}", to.name());
            if self.client.blob_exists(&target, digest).await.map_err(|e| Self::error(to, &what, e))? {
                continue;
            }
            if self.client.mount_blob(&target, &source, digest).await.is_ok() {
                continue;
            }
            let mut out = Limited { buf: Vec::new(), limit: usize::MAX };
            self.client.pull_blob(&source, digest, &mut out).await.map_err(|e| Self::error(from, &what, e))?;
            self.client.push_blob(&target, out.buf, digest).await.map_err(|e| Self::error(to, &what, e))?;
        }
        Ok(())
    }

    /// The attestation artifacts listed as referrers of `image@digest`, each
    /// read by digest, hash-checked, and naming that subject.
    async fn referrer_manifests(&self, image: &ImageRef, digest: Digest) -> Result<Vec<Manifest>, RegistryError> {
        self.referrers_of_type(image, digest, ATTESTATIONS_ARTIFACT_TYPE).await
    }

    /// The artifacts of `artifact_type` listed as referrers of
    /// `image@digest`, each read by digest, hash-checked, and naming that
    /// subject.
    async fn referrers_of_type(
        &self,
        image: &ImageRef,
        digest: Digest,
        artifact_type: &str,
    ) -> Result<Vec<Manifest>, RegistryError> {
        let what = format!("{}@{digest}", image.name());
        self.authenticate(image).await;
        let index = self
            .client
            .pull_referrers(&Self::reference(image, &Target::Digest(digest)), Some(artifact_type))
            .await
            .map_err(|e| Self::error(image, &what, e))?;
        let mut out = Vec::new();
        for entry in index.manifests {
            let d: Digest = entry.digest.parse().map_err(|e| protocol(&what, format!("referrer: {e}")))?;
            let m = self.manifest_async(image, Target::Digest(d)).await?;
            let names_subject = m.doc.subject().is_some_and(|s| s.digest().as_ref() == digest.to_string());
            if names_subject && m.doc.artifact_type().map(AsRef::as_ref) == Some(artifact_type) {
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
        let mut index = match tagged.map(|m| m.doc) {
            Some(ManifestDoc::Index(index)) => *index,
            Some(ManifestDoc::Image(_)) => {
                return Err(protocol(
                    &format!("{}:{tag}", image.name()),
                    "the referrers tag names an image manifest, not an index",
                ));
            }
            None => {
                let mut index = ImageIndex::default();
                index.set_media_type(Some(MediaType::ImageIndex));
                index
            }
        };
        if !index.manifests().iter().any(|m| m.digest().as_ref() == artifact.digest.to_string()) {
            let mut entry = artifact.descriptor();
            entry.set_artifact_type(artifact.doc.artifact_type().cloned());
            entry.set_annotations(artifact.doc.annotations().cloned());
            let mut entries = index.manifests().clone();
            entries.push(entry);
            index.set_manifests(entries);
            let written = Manifest::written(ManifestDoc::Index(Box::new(index)));
            self.push_manifest(image, Target::Tag(&tag), &written).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parse(json: &str) -> Result<ManifestDoc, RegistryError> {
        ManifestDoc::parse("test", json.as_bytes())
    }

    fn refusal(json: &str) -> String {
        parse(json).expect_err("refused").to_string()
    }

    fn attestation_artifact() -> Manifest {
        let layer = |n: u64| {
            own_descriptor(
                DSSE_ENVELOPE,
                Digest::of(&n.to_be_bytes()),
                100 + n,
                &[(ANNOTATION_ENTRY_INDEX, n.to_string()), (ANNOTATION_ENTRY_HASH, format!("{n:064x}"))],
            )
        };
        let subject = Descriptor::new(MediaType::ImageManifest, 1234, oci_digest(D.parse().unwrap()));
        Manifest::written(ManifestDoc::artifact(
            ATTESTATIONS_ARTIFACT_TYPE,
            vec![layer(1), layer(2)],
            [(ANNOTATION_GENESIS.to_string(), "g".repeat(64)), ("z.other".to_string(), "x".to_string())].into(),
            Some(subject),
        ))
    }

    #[test]
    fn a_written_manifest_is_the_same_bytes_every_time_keys_sorted() {
        let first = attestation_artifact();
        // Each HashMap iterates in its own order; the bytes must not.
        for _ in 0..32 {
            assert_eq!(attestation_artifact().bytes, first.bytes);
        }
        let text = String::from_utf8(first.bytes.clone()).unwrap();
        let empty = Digest::of(b"{}");
        let expected = format!(
            r#"{{"annotations":{{"dev.provledger.genesis":"{g}","z.other":"x"}},"artifactType":"{ATTESTATIONS_ARTIFACT_TYPE}","config":{{"digest":"{empty}","mediaType":"application/vnd.oci.empty.v1+json","size":2}},"layers":[{{"annotations":{{"dev.provledger.entry.hash":"{h1:064x}","dev.provledger.entry.index":"1"}},"digest":"{l1}","mediaType":"{DSSE_ENVELOPE}","size":101}},{{"annotations":{{"dev.provledger.entry.hash":"{h2:064x}","dev.provledger.entry.index":"2"}},"digest":"{l2}","mediaType":"{DSSE_ENVELOPE}","size":102}}],"mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2,"subject":{{"digest":"{D}","mediaType":"application/vnd.oci.image.manifest.v1+json","size":1234}}}}"#,
            g = "g".repeat(64),
            h1 = 1,
            h2 = 2,
            l1 = Digest::of(&1u64.to_be_bytes()),
            l2 = Digest::of(&2u64.to_be_bytes()),
        );
        assert_eq!(text, expected);
        assert_eq!(first.digest, Digest::of(expected.as_bytes()));
        assert_eq!(first.media_type, "application/vnd.oci.image.manifest.v1+json");
        assert!(!first.is_index());
    }

    #[test]
    fn a_written_manifest_reads_back_as_written() {
        let m = attestation_artifact();
        let read = parse(std::str::from_utf8(&m.bytes).unwrap()).unwrap();
        assert_eq!(read.to_bytes(), m.bytes);
        assert_eq!(read.artifact_type().map(AsRef::as_ref), Some(ATTESTATIONS_ARTIFACT_TYPE));
        assert_eq!(read.subject().map(|s| s.digest().to_string()), Some(D.to_string()));
        assert_eq!(read.layers().len(), 2);
        assert_eq!(read.blobs().count(), 3, "the config and both layers");
    }

    #[test]
    fn manifests_and_indexes_are_read_by_declared_type_or_shape() {
        let config = format!(r#"{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D}","size":7}}"#);
        let image = format!(r#"{{"schemaVersion":2,"config":{config},"layers":[],"x-registry":{{"any":1}}}}"#);
        assert!(matches!(parse(&image).unwrap(), ManifestDoc::Image(_)), "no mediaType, no manifests: an image");
        let docker =
            format!(r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{config},"layers":[{config}]}}"#);
        let doc = parse(&docker).unwrap();
        assert_eq!(doc.declared_type().as_ref(), DOCKER_MANIFEST);
        assert_eq!(doc.blobs().count(), 2);
        let child = format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{D}","size":9,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}}"#
        );
        let index = format!(r#"{{"schemaVersion":2,"manifests":[{child}]}}"#);
        let doc = parse(&index).unwrap();
        assert_eq!(doc.declared_type(), MediaType::ImageIndex, "manifests, no mediaType: an index");
        let list = format!(r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[{child}]}}"#);
        let ManifestDoc::Index(list) = parse(&list).unwrap() else { panic!("a Docker list is an index") };
        let p = list.manifests()[0].platform().clone().unwrap();
        assert_eq!((p.os().to_string(), p.architecture().to_string()), ("linux".into(), "arm64".into()));
        assert_eq!(p.variant().as_deref(), Some("v8"));
        assert_eq!(
            manifest_types().iter().map(lists_manifests).collect::<Vec<_>>(),
            [Some(true), Some(false), Some(true), Some(false)]
        );
    }

    #[test]
    fn what_is_not_a_manifest_the_ledger_reads_is_refused() {
        assert!(refusal("[]").contains("not a valid OCI/Docker manifest"));
        assert!(refusal(r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#).contains("not a valid"));
        assert!(
            refusal(r#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#).contains("schemaVersion 1 (only 2 is read)")
        );
        let artifact = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.artifact.manifest.v1+json","blobs":[]}"#;
        assert!(
            refusal(artifact).contains("unsupported manifest media type application/vnd.oci.artifact.manifest.v1+json")
        );
        let v1 = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#;
        assert!(refusal(v1).contains("unsupported manifest media type"));
        // The fields its type requires, and well-formed descriptors.
        assert!(
            refusal(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#)
                .contains("config")
        );
        assert!(
            refusal(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#)
                .contains("manifests")
        );
        let bad_digest = r#"{"schemaVersion":2,"manifests":[{"mediaType":"m","digest":"sha256:ABC","size":1}]}"#;
        assert!(refusal(bad_digest).contains("not a valid OCI/Docker manifest"));
        let no_size = format!(r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"m","digest":"{D}"}}]}}"#);
        assert!(refusal(&no_size).contains("size"));
    }

    #[test]
    fn an_architecture_is_recorded_as_the_index_states_it() {
        let index = |arch: &str| {
            format!(
                r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"m","digest":"{D}","size":1,"platform":{{"architecture":"{arch}","os":"linux"}}}}]}}"#
            )
        };
        for arch in ["amd64", "armbe", "arm64be", "386", "x86_64"] {
            let text = index(arch);
            let ManifestDoc::Index(i) = parse(&text).unwrap() else { panic!("an index") };
            let parsed = i.manifests()[0].platform().as_ref().unwrap().architecture().clone();
            assert_eq!(stated_architecture(text.as_bytes(), 0, &parsed), arch);
        }
    }
}
