//! The reports of `attach` and `fetch-attestations`.

use super::*;

/// `attach`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Attached {
    pub image: String,
    /// The digest of the attestation artifact's manifest.
    pub artifact: String,
    /// The entries whose envelopes it carries.
    pub entries: Vec<u64>,
    /// How the registry lists it: `referrers-api` or `tag-schema`.
    pub listed_by: String,
    /// `REGISTRY/REPO`.
    #[serde(skip)]
    pub repository: String,
    /// `--vsa`: the digest of the verification summary's artifact manifest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vsa_artifact: Option<String>,
}

impl Report for Attached {
    fn human(&self) {
        println!("attached {} envelope(s) (entries {:?}) to {}", self.entries.len(), self.entries, self.image);
        println!("artifact {}@{}, listed by the {}", self.repository, self.artifact, self.listed_by);
        if let Some(a) = &self.vsa_artifact {
            println!("verification summary {}@{a}", self.repository);
        }
    }
}

/// One envelope fetched from a registry, checked against the ledger.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AttestationChecked {
    pub artifact: String,
    pub layer: usize,
    pub ok: bool,
    /// The ledger entry it is (when `ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<Attested>,
    /// Why it was refused (when not `ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `fetch-attestations`: exit 4 when any envelope is refused.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AttestationsFetched {
    pub image: String,
    #[schemars(pattern(DIGEST))]
    pub digest: String,
    pub attestations: Vec<AttestationChecked>,
}

impl Report for AttestationsFetched {
    fn human(&self) {
        for a in &self.attestations {
            match (&a.entry, &a.reason) {
                (Some(e), _) => println!(
                    "ok: {} entry {} ({}) signed by {}",
                    e.kind,
                    e.index,
                    e.hash,
                    e.signers.iter().map(|s| &s[..8.min(s.len())]).collect::<Vec<_>>().join(",")
                ),
                (None, why) => eprintln!(
                    "rejected: artifact {} layer {}: {}",
                    a.artifact,
                    a.layer,
                    why.as_deref().unwrap_or_default()
                ),
            }
        }
    }
}
