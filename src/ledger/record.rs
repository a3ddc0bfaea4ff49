//! Builders for the statements the ledger records: what a build lane, a
//! validation lane or a policy owner asserts, turned into an in-toto
//! Statement ready to sign. Pure: inputs in, statement out.

use std::collections::BTreeMap;

use crate::core::digest::Digest;
use crate::core::image_ref::ImageRef;
use crate::core::statement::{
    BUILD_TYPE, BuildDefinition, BuildMetadata, BuildPredicate, Builder, Check, CiRun, EntryRef, ExternalParameters,
    InternalParameters, LedgerFlags, PlatformManifest, PolicyPredicate, Predicate, ReleaseBinding, ResourceDescriptor,
    RunDetails, Statement, Subject, ValidationPredicate, rfc3339,
};

pub use crate::core::statement::Binding;

/// Builder id used when the build lane names none.
pub const UNSPECIFIED_BUILDER: &str = "https://provledger.dev/builders/unspecified";

/// What a build lane reports.
#[derive(Clone, Debug)]
pub struct BuildInput {
    pub image: ImageRef,
    pub artifact: Option<String>,
    pub release: Option<String>,
    pub git_sha: Option<String>,
    pub source_repository: Option<String>,
    pub builder_id: Option<String>,
    pub ci: CiRun,
    pub registry_confirmed: bool,
    pub registry: Option<String>,
    /// The manifest media type and platforms the registry published.
    pub media_type: Option<String>,
    pub platforms: Vec<PlatformManifest>,
    pub time: u64,
    /// The ledger the statement is for and its nonce (see [`Binding`]).
    pub binding: Option<Binding>,
}

fn subject_for(image: &ImageRef) -> Subject {
    match image.digest() {
        Some(d) => Subject::pinned(image.name(), d),
        None => Subject::tag_only(image.to_string()),
    }
}

/// A build statement (SLSA Provenance v1). A tag-only image makes it dev-only.
pub fn build_statement(input: BuildInput) -> Statement {
    let dev_only = !input.image.is_pinned();
    let resolved_dependencies = input
        .git_sha
        .map(|sha| ResourceDescriptor {
            uri: input.source_repository.as_ref().map(|r| format!("git+{r}")),
            digest: BTreeMap::from([("gitCommit".to_string(), sha)]),
        })
        .into_iter()
        .collect();
    let invocation_id = input.ci.run_url.clone().or_else(|| input.ci.run_id.clone());
    // The image first, then each platform manifest it publishes.
    let mut subjects = vec![subject_for(&input.image)];
    for p in &input.platforms {
        if let Ok(d) = p.digest.parse::<Digest>()
            && Some(d) != input.image.digest()
            && !subjects.iter().any(|s| s.sha256().ok().flatten() == Some(d))
        {
            subjects.push(Subject::pinned(input.image.name(), d));
        }
    }
    Statement {
        subjects,
        predicate: Predicate::Build(BuildPredicate {
            build_definition: BuildDefinition {
                build_type: BUILD_TYPE.to_string(),
                external_parameters: ExternalParameters {
                    image: input.image.to_string(),
                    tag: input.image.tag().map(str::to_string),
                    artifact: input.artifact,
                    release: input.release,
                    ci: (!input.ci.is_empty()).then_some(input.ci),
                    media_type: input.media_type,
                    platforms: input.platforms,
                },
                internal_parameters: InternalParameters {
                    provledger: LedgerFlags {
                        registry_confirmed: input.registry_confirmed,
                        ..LedgerFlags::new(dev_only, input.registry, input.binding)
                    },
                },
                resolved_dependencies,
            },
            run_details: RunDetails {
                builder: Builder { id: input.builder_id.unwrap_or_else(|| UNSPECIFIED_BUILDER.to_string()) },
                metadata: BuildMetadata { invocation_id, finished_on: rfc3339(input.time) },
            },
        }),
    }
}

/// What a validation lane reports.
#[derive(Clone, Debug)]
pub struct ValidationInput {
    pub image: ImageRef,
    /// The build entry validated (required unless the image is tag-only).
    pub build: Option<EntryRef>,
    pub checks: Vec<Check>,
    pub ci: CiRun,
    pub registry_confirmed: bool,
    pub registry: Option<String>,
    pub time: u64,
    pub binding: Option<Binding>,
}

pub fn validation_statement(input: ValidationInput) -> Statement {
    let dev_only = !input.image.is_pinned();
    Statement {
        subjects: vec![subject_for(&input.image)],
        predicate: Predicate::Validation(ValidationPredicate {
            build: input.build,
            checks: input.checks,
            provledger: LedgerFlags {
                registry_confirmed: input.registry_confirmed,
                ..LedgerFlags::new(dev_only, input.registry, input.binding)
            },
            validated_on: rfc3339(input.time),
            ci: (!input.ci.is_empty()).then_some(input.ci),
        }),
    }
}

/// Subject name of policy statements.
pub const POLICY_SUBJECT: &str = crate::core::statement::POLICY_SUBJECT_NAME;

/// A policy statement. Its subject is the policy source file (by digest), so
/// an auditor can match the file a policy was made from.
pub fn policy_statement(predicate: PolicyPredicate, source: &[u8]) -> Statement {
    Statement {
        subjects: vec![Subject::pinned(POLICY_SUBJECT.to_string(), Digest::of(source))],
        predicate: Predicate::Policy(predicate),
    }
}

/// What a promotion records besides the gate's evidence.
#[derive(Clone, Debug, Default)]
pub struct PromotionInput {
    /// The registry that confirmed the digest still exists (`None` offline).
    pub registry: Option<String>,
    /// `REPO:TAG` moved to the digest, if any.
    pub tag_target: Option<String>,
    /// The release the digest is promoted for, with the rebuilds set aside.
    pub release: Option<ReleaseBinding>,
    pub time: u64,
    pub binding: Option<Binding>,
}

/// A promotion statement for an allowed decision.
pub fn promotion_statement(
    image: &ImageRef,
    digest: Digest,
    to: &str,
    allowed: crate::gate::Allowed,
    input: PromotionInput,
) -> Statement {
    Statement {
        subjects: vec![Subject::pinned(image.name(), digest)],
        predicate: Predicate::Promotion(crate::core::statement::PromotionPredicate {
            from: allowed.from,
            to: to.to_string(),
            build: allowed.build,
            validations: allowed.validations,
            provledger: LedgerFlags::new(false, input.registry, input.binding),
            promoted_on: rfc3339(input.time),
            tag_target: input.tag_target,
            release: input.release,
        }),
    }
}
