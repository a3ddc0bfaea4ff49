//! The reports of `promote` (a digest or a release) and `reconcile-tags`.

use super::*;

/// `promote --image`, appended.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Promoted {
    /// Always true.
    #[schemars(extend("const" = true))]
    pub allowed: bool,
    pub image: String,
    pub to: String,
    /// The tag moved to the digest (`--tag-target`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_target: Option<String>,
    pub entry: EntryReport,
    #[serde(skip)]
    #[schemars(pattern(DIGEST))]
    pub digest: String,
}

impl Report for Promoted {
    fn human(&self) {
        println!("promoted {} to {}: entry {}", self.image, self.to, self.entry.index);
        if let Some(t) = &self.tag_target {
            println!("{t} now serves {}", self.digest);
        }
        println!("entry hash {}", self.entry.hash);
    }
}

/// The evidence a promotion stands on.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Evidence {
    pub build: EntryId,
    pub validations: Vec<EntryId>,
}

/// `promote --image --dry-run`, allowed: nothing appended.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PromotionAllowed {
    /// Always true.
    #[schemars(extend("const" = true))]
    pub allowed: bool,
    /// Always true.
    #[schemars(extend("const" = true))]
    pub dry_run: bool,
    pub image: String,
    pub to: String,
    pub evidence: Evidence,
}

impl Report for PromotionAllowed {
    fn human(&self) {
        println!("promotion of {} to {} allowed (dry run; nothing appended)", self.image, self.to);
        let validations: Vec<u64> = self.evidence.validations.iter().map(|r| r.index).collect();
        println!("  build entry {}, validation entries {validations:?}", self.evidence.build.index);
    }
}

/// `promote --image --tag-target` again, after the promotion was appended:
/// only the tag moved.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TagMoved {
    /// Always true.
    #[schemars(extend("const" = true))]
    pub allowed: bool,
    /// The promotion already recorded (its index).
    pub entry: EntryIndex,
    pub tag_target: String,
    /// Always true.
    #[schemars(extend("const" = true))]
    pub moved: bool,
    #[serde(skip)]
    pub image: String,
    #[serde(skip)]
    pub to: String,
    /// The digest the registry now serves under the tag.
    #[serde(skip)]
    pub served: String,
}

/// An entry named by its index.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EntryIndex {
    pub index: u64,
}

impl Report for TagMoved {
    fn human(&self) {
        println!(
            "{} is already promoted to {} with tag target {} (entry {})",
            self.image, self.to, self.tag_target, self.entry.index
        );
        println!("{} now serves {}", self.tag_target, self.served);
    }
}

/// `promote`, denied (exit 3): every reason.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PromotionDenied {
    /// Always false.
    #[schemars(extend("const" = false))]
    pub allowed: bool,
    /// The image asked for (`--image`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The release asked for (`--release`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    pub to: String,
    pub reasons: Vec<String>,
}

impl Report for PromotionDenied {
    fn human(&self) {
        match (&self.image, &self.release) {
            (Some(image), _) => eprintln!("promotion of {image} to {} denied:", self.to),
            (None, release) => eprintln!(
                "promotion of release {} to {} denied (no artifact promoted):",
                release.as_deref().unwrap_or_default(),
                self.to
            ),
        }
        for r in &self.reasons {
            eprintln!("  - {r}");
        }
    }
}

/// The digest chosen for one artifact of a release.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ArtifactChoice {
    pub artifact: String,
    #[schemars(pattern(DIGEST))]
    pub digest: String,
    /// The artifact's other digests in the release, set aside.
    pub supersedes: Vec<String>,
    /// The image reference, with the digest.
    #[serde(skip)]
    pub image: String,
}

fn print_choices(artifacts: &[ArtifactChoice]) {
    for a in artifacts {
        let aside = if a.supersedes.is_empty() {
            String::new()
        } else {
            format!(" (setting aside {})", a.supersedes.join(", "))
        };
        println!("  {}: {}{aside}", a.artifact, a.image);
    }
}

/// `promote --release`: allowed on a dry run, or appended (with `entries`).
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ReleasePromoted {
    /// Always true.
    #[schemars(extend("const" = true))]
    pub allowed: bool,
    /// True on a dry run, which appends nothing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    pub release: String,
    pub to: String,
    pub artifacts: Vec<ArtifactChoice>,
    /// The promotions appended, one per artifact (not on a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<EntryReport>>,
}

impl Report for ReleasePromoted {
    fn human(&self) {
        let (release, to) = (&self.release, &self.to);
        match &self.entries {
            None => {
                let n = self.artifacts.len();
                println!("promotion of release {release} to {to} allowed for {n} artifact(s) (dry run):");
                print_choices(&self.artifacts);
            }
            Some(entries) => {
                println!("promoted release {release} to {to}:");
                print_choices(&self.artifacts);
                for e in entries {
                    println!("  entry {}: {}", e.index, e.subjects.join(" "));
                }
            }
        }
    }
}

/// Every report of `promote`.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(super) enum PromoteReports {
    Promoted(Promoted),
    DryRun(PromotionAllowed),
    TagMoved(TagMoved),
    Denied(PromotionDenied),
    Release(ReleasePromoted),
}

/// One environment tag, as `reconcile-tags` found (and left) it.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TagState {
    pub environment: String,
    /// `REPO:TAG`.
    pub tag_target: String,
    /// The newest promotion naming the tag.
    pub entry: u64,
    /// The digest that promotion names: what the tag must serve.
    #[schemars(pattern(DIGEST))]
    pub digest: String,
    /// What the registry served under the tag before (null: nothing).
    pub served: Option<String>,
    /// The tag already served the digest.
    pub in_place: bool,
    /// The tag was moved to the digest.
    pub moved: bool,
}

/// `reconcile-tags`: `ok` is false (exit 3) when `--check` found a tag out of place.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TagsReconciled {
    pub ok: bool,
    pub tags: Vec<TagState>,
}

impl Report for TagsReconciled {
    fn human(&self) {
        if self.tags.is_empty() {
            println!("no promotion recorded a tag target");
        }
        for t in &self.tags {
            let served = t.served.as_deref().unwrap_or("nothing");
            let (target, env, digest, index) = (&t.tag_target, &t.environment, &t.digest, t.entry);
            match (t.in_place, t.moved) {
                (true, _) => println!("{target} ({env}): serves {digest} (entry {index})"),
                (false, true) => println!("{target} ({env}): served {served}; moved to {digest} (entry {index})"),
                (false, false) => {
                    println!("{target} ({env}): serves {served}, but the ledger promoted {digest} (entry {index})")
                }
            }
        }
    }
}
