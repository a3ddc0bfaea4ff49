//! The pages as HTML: server-rendered, one small stylesheet, no script, no
//! font or image from anywhere. Every text is escaped (maud escapes what it
//! interpolates); a link taken from the ledger (a CI run, evidence) is made
//! only for an `http` or `https` URL.

use maud::{DOCTYPE, Markup, html};

use super::*;
use crate::audit::{BuildInfo, PromotionInfo, ValidationInfo};

/// The site's stylesheet (`style.css` at its root).
pub const STYLESHEET: &str = include_str!("style.css");

fn title(data: &PageData) -> String {
    match &data.page {
        Page::Overview => "Overview".into(),
        Page::Digests => "Digests".into(),
        Page::Digest(d) => format!("Digest {}", short_digest(&d.to_string())),
        Page::Releases => "Releases".into(),
        Page::Release(r) => format!("Release {r}"),
        Page::Environment(e) => format!("Environment {e}"),
        Page::Policy => "Policy history".into(),
    }
}

fn short_digest(d: &str) -> String {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    format!("sha256:{}…", &hex[..hex.len().min(12)])
}

/// Renders a page.
pub fn render(data: &PageData) -> String {
    let page = &data.page;
    let title = title(data);
    let json = page.link(page, "json");
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · provledger" }
                link rel="stylesheet" href=(page.root_link("style.css"));
                link rel="alternate" type="application/json" href=(json);
            }
            body {
                a.skip href="#main" { "Skip to the content" }
                header.site {
                    p.brand { "provledger audit view" }
                    nav aria-label="Pages" {
                        ul {
                            (nav_item(page, &Page::Overview, "Overview"))
                            (nav_item(page, &Page::Digests, "Digests"))
                            (nav_item(page, &Page::Releases, "Releases"))
                            (nav_item(page, &Page::Policy, "Policy history"))
                        }
                    }
                }
                main #main {
                    h1 { (title) }
                    (banner(&data.verification))
                    @match &data.content {
                        None => (untrusted(&data.verification)),
                        Some(c) => (content(page, c)),
                    }
                }
                footer {
                    p {
                        "This page as JSON: " a href=(json) rel="alternate" type="application/json" { (page.stem()) ".json" }
                    }
                }
            }
        }
    };
    markup.into_string()
}

fn nav_item(from: &Page, to: &Page, label: &str) -> Markup {
    let current = from == to;
    html! {
        li { a href=(from.link(to, "html")) aria-current=[current.then_some("page")] { (label) } }
    }
}

fn banner(trust: &Trust) -> Markup {
    match trust {
        Trust::Verified(v) => html! {
            section.banner.verified #verification data-verification="verified" role="status" aria-labelledby="verification-title" {
                h2 #verification-title { span.mark aria-hidden="true" { "✔" } " Verified" }
                p {
                    "Verified " (v.scope) ", of " (v.source) ", at " time datetime=(v.verified_at) { (v.verified_at) }
                    ": " (v.entries) " entries from the genesis entry, every signature, every policy rule and every promotion gate."
                }
                dl.facts {
                    dt { "Genesis" } dd {
                        code data-fact="genesis" { (v.genesis) }
                        @if v.genesis_pinned { " (the one given)" }
                        @else { br; span.unpinned { "Not pinned: compare it with the genesis hash you trust (`report --genesis HASH` checks it)." } }
                    }
                    dt { "Tree size" } dd data-fact="size" { (v.checkpoint.size) }
                    dt { "Merkle root" } dd { code data-fact="root" { (v.checkpoint.root) } }
                    dt { "Checkpoint signer" } dd { code data-fact="signer" { (v.checkpoint.signer) } }
                    dt { "Head entry" } dd { code { (v.head) } }
                }
            }
        },
        Trust::Failed(f) => html! {
            section.banner.failed #verification data-verification="failed" role="alert" aria-labelledby="verification-title" {
                h2 #verification-title { span.mark aria-hidden="true" { "✘" } " Not verified: this ledger failed verification" }
                p { "Nothing here is trusted, and nothing from the ledger is shown. Checked " (f.source) " at " time datetime=(f.verified_at) { (f.verified_at) } "." }
                dl.facts {
                    @if let Some(i) = f.index { dt { "First bad entry" } dd data-fact="index" { (i) } }
                    @if let Some(r) = &f.rule { dt { "Rule broken" } dd { code { (r) } } }
                    dt { "Reason" } dd data-fact="reason" { (f.message) }
                }
            }
        },
        Trust::Pending { source, since } => html! {
            section.banner.pending #verification data-verification="pending" role="status" aria-labelledby="verification-title" {
                h2 #verification-title { span.mark aria-hidden="true" { "…" } " Not yet verified" }
                p { "The server has been verifying " (source) " since " time datetime=(since) { (since) } ". Nothing is shown until it has verified; reload later." }
            }
        },
    }
}

fn untrusted(trust: &Trust) -> Markup {
    html! {
        p.untrusted {
            @match trust {
                Trust::Pending { .. } => "This page shows the ledger once it has verified.",
                _ => "This page would show the ledger's records. It shows none, because the ledger failed verification: run `provledger verify` to locate the damage, and audit from a copy that verifies.",
            }
        }
    }
}

fn content(page: &Page, c: &Content) -> Markup {
    match c {
        Content::Overview(o) => overview(page, o),
        Content::Digests { digests } => digest_list(page, digests),
        Content::Digest(d) => digest(page, d),
        Content::Releases { releases } => release_list(page, releases),
        Content::Release(r) => release(page, r),
        Content::Environment(e) => environment(page, e),
        Content::Policy { policies } => policy(page, policies),
    }
}

fn digest_link(from: &Page, digest: &str) -> Markup {
    match digest.parse::<Digest>() {
        Ok(d) => {
            html! { a.digest href=(from.link(&Page::Digest(d), "html")) title=(digest) { code { (short_digest(digest)) } } }
        }
        Err(_) => html! { code { (digest) } },
    }
}

fn env_link(from: &Page, env: &str) -> Markup {
    html! { a href=(from.link(&Page::Environment(env.to_string()), "html")) { (env) } }
}

/// Environments a digest went to, linked, or "nowhere".
fn env_links(from: &Page, envs: &[String]) -> Markup {
    html! {
        @if envs.is_empty() { span.none { "nowhere" } }
        @else { @for (i, e) in envs.iter().enumerate() { @if i > 0 { ", " } (env_link(from, e)) } }
    }
}

/// A link taken from the ledger: only http(s), and it leaves the site.
fn outside_link(url: &str, label: &str) -> Markup {
    let ok = url.starts_with("https://") || url.starts_with("http://");
    html! {
        @if ok { a.outside href=(url) rel="noopener noreferrer nofollow" { (label) } }
        @else { code { (url) } }
    }
}

fn signers(s: &[Signer]) -> Markup {
    html! {
        @for (i, k) in s.iter().enumerate() {
            @if i > 0 { ", " }
            span.signer title=(k.key_id) { (k.label()) }
        }
    }
}

fn time(t: &str) -> Markup {
    html! { time datetime=(t) { (t.replace('T', " ").trim_end_matches('Z')) " UTC" } }
}

fn overview(page: &Page, o: &Overview) -> Markup {
    html! {
        section aria-labelledby="environments-title" {
            h2 #environments-title { "Environments" }
            table #environments {
                caption { "Each environment of the policy in force, in promotion order" }
                thead { tr {
                    th scope="col" { "Environment" }
                    th scope="col" { "Running now" }
                    th scope="col" { "Roll back to" }
                    th scope="col" { "Last promotion" }
                    th scope="col" { "Requires" }
                } }
                tbody {
                    @for e in &o.environments {
                        tr #{"env-" (e.name)} data-environment=(e.name) data-current=[e.current.as_deref()] {
                            th scope="row" { (env_link(page, &e.name)) }
                            td.current { @match &e.current { Some(d) => (digest_link(page, d)), None => span.none { "nothing promoted yet" } } }
                            td.rollback { @match &e.rollback_target { Some(d) => (digest_link(page, d)), None => span.none { "none" } } }
                            td { @match &e.last_promotion {
                                Some(p) => { (time(&p.recorded_at)) " by " (signers(&p.signers)) " (entry " (p.index) ")" }
                                None => span.none { "never" }
                            } }
                            td {
                                @if let Some(r) = &e.requires { "promotion to " (r) " first; " }
                                "checks: " (list_or(&e.required_checks, "none"))
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="recent-title" {
            h2 #recent-title { "Recent activity" }
            p { (o.digests) " digests and " (o.releases) " releases recorded. The newest entries first:" }
            (activity(page, &o.recent))
        }
    }
}

fn list_or(items: &[String], none: &str) -> String {
    if items.is_empty() { none.to_string() } else { items.join(", ") }
}

fn activity(page: &Page, rows: &[Activity]) -> Markup {
    html! {
        table #recent {
            caption { "Recent entries, newest first" }
            thead { tr {
                th scope="col" { "Entry" } th scope="col" { "Time" } th scope="col" { "Kind" }
                th scope="col" { "What" } th scope="col" { "Digest" } th scope="col" { "Signed by" }
            } }
            tbody {
                @for a in rows {
                    tr {
                        td.num { (a.index) }
                        td { (time(&a.recorded_at)) }
                        td { span class={"kind " (a.kind)} { (a.kind) } }
                        td { (a.summary) }
                        td { @match &a.digest {
                            Some(d) => (digest_link(page, d)),
                            None if a.kind == "policy" => span.none { "—" },
                            None => span.none { "tag-only" },
                        } }
                        td { (signers(&a.signers)) }
                    }
                }
            }
        }
    }
}

fn digest_list(page: &Page, rows: &[DigestRow]) -> Markup {
    html! {
        @if rows.is_empty() { p { "No digest is recorded yet." } }
        @else {
            table #digests {
                caption { "Every digest the chain names, in order of first appearance" }
                thead { tr {
                    th scope="col" { "Digest" } th scope="col" { "Image" } th scope="col" { "First entry" } th scope="col" { "Promoted to" }
                } }
                tbody {
                    @for r in rows {
                        tr {
                            td { (digest_link(page, &r.digest)) }
                            td { @if let Some(i) = &r.image { code { (i) } } @else { span.none { "no build recorded" } } }
                            td.num { (r.first_entry) }
                            td { (env_links(page, &r.promoted_to)) }
                        }
                    }
                }
            }
        }
    }
}

/// One step of a digest's timeline.
enum Step<'a> {
    Build(&'a BuildInfo),
    Validation(&'a ValidationInfo),
    Promotion(&'a PromotionInfo),
}

impl Step<'_> {
    fn index(&self) -> u64 {
        match self {
            Step::Build(b) => b.index,
            Step::Validation(v) => v.index,
            Step::Promotion(p) => p.index,
        }
    }
}

fn digest(page: &Page, d: &DigestPage) -> Markup {
    let r = &d.report;
    let mut steps: Vec<Step> = r.builds.iter().map(Step::Build).collect();
    steps.extend(r.validations.iter().map(Step::Validation));
    steps.extend(r.promotions.iter().map(Step::Promotion));
    steps.sort_by_key(Step::index);
    let findings = r.findings.len() + d.superseded.len() + d.dev_only.len();
    html! {
        p.digest-full { "Digest " code #digest { (r.digest) } }
        section aria-labelledby="gates-title" {
            h2 #gates-title { "Where it stands with each gate" }
            table #gates {
                caption { "The promotion gate of each environment, decided now under the policy in force" }
                thead { tr { th scope="col" { "Environment" } th scope="col" { "Promoted" } th scope="col" { "Gate now" } th scope="col" { "Reasons" } } }
                tbody {
                    @for g in &d.gates {
                        tr data-environment=(g.environment) data-allowed=(g.allowed) {
                            th scope="row" { (env_link(page, &g.environment)) }
                            td { @match g.promoted { Some(i) => { "yes, entry " (i) }, None => span.none { "no" } } }
                            td { @if g.allowed { span.pass { "allowed" } } @else { span.fail { "denied" } } }
                            td { @if g.reasons.is_empty() { span.none { "none" } }
                                 @else { ul.reasons { @for why in &g.reasons { li { (why) } } } } }
                        }
                    }
                }
            }
        }
        section aria-labelledby="findings-title" #findings data-count=(findings) {
            h2 #findings-title { "Findings" }
            @if findings == 0 && d.policy_changes.is_empty() { p { "Nothing for an auditor to look at." } }
            ul.findings {
                @for f in &r.findings { @if f.is_rebuild() { li.finding.rebuild { strong { "Rebuild. " } (f.to_string().trim_start_matches("rebuild: ")) } } }
                @for s in &d.superseded {
                    li.finding.superseded {
                        strong { "Superseded outcome. " }
                        "Check " code { (s.check) } ": " (s.result) " in entry " (s.index) " was superseded by " (s.by_result) " in entry " (s.by_index) "."
                    }
                }
                @for x in &d.dev_only {
                    li.finding.dev-only {
                        strong { "Dev-only record. " }
                        "Entry " (x.index) " (" (x.kind) ") names " code { (x.subject) } " by tag only; it never counts toward a gate."
                    }
                }
                @for p in &d.policy_changes {
                    li.finding.policy-change data-touches-checks=(p.touches_its_checks) {
                        strong { "Policy change. " }
                        "Entry " (p.index) ", signed by " (signers(&p.signers)) ", after this digest was first recorded"
                        @if p.touches_its_checks { ", changed checks that apply to it" }
                        ": " (p.changes.join("; ")) "."
                    }
                }
            }
        }
        section aria-labelledby="timeline-title" {
            h2 #timeline-title { "Timeline" }
            ol.timeline #timeline {
                @for s in &steps { (step(page, s)) }
            }
        }
    }
}

fn step(page: &Page, s: &Step) -> Markup {
    match s {
        Step::Build(b) => html! {
            li.step.build data-entry=(b.index) {
                h3 { span.kind.build { "build" } " entry " (b.index) " · " (time(&b.recorded_at)) }
                dl.facts {
                    dt { "Image" } dd { code { (repository(&b.image)) @if let Some(t) = &b.tag { ":" (t) } } }
                    @if let Some(a) = &b.artifact { dt { "Artifact" } dd { (a) } }
                    @if let Some(g) = &b.git_sha { dt { "Source revision" } dd { code { (g) } } }
                    @if let Some(r) = &b.source_repository { dt { "Source" } dd { (outside_link(r, r)) } }
                    dt { "Builder" } dd { (b.builder_id) }
                    @if let Some(ci) = &b.ci {
                        dt { "CI run" } dd {
                            @match (&ci.run_url, &ci.run_id) {
                                (Some(u), id) => (outside_link(u, &id.clone().unwrap_or_else(|| u.clone()))),
                                (None, Some(id)) => (id),
                                (None, None) => span.none { "not recorded" },
                            }
                            @if let Some(w) = &ci.workflow { " (" (w) ")" }
                        }
                    }
                    dt { "Registry" } dd {
                        @if b.registry_confirmed { "confirmed the digest" @if let Some(r) = &b.registry { " (" (r) ")" } }
                        @else { "not asked (recorded offline)" }
                    }
                    dt { "Signed by" } dd { (signers(&b.signers)) }
                    dt { "Entry hash" } dd { code { (b.hash) } }
                }
            }
        },
        Step::Validation(v) => html! {
            li.step.validation data-entry=(v.index) {
                h3 { span.kind.validation { "validation" } " entry " (v.index) " · " (time(&v.recorded_at)) @if v.dev_only { " (dev-only)" } }
                table.checks {
                    caption { "Gate outcomes recorded in entry " (v.index) }
                    thead { tr { th scope="col" { "Check" } th scope="col" { "Outcome" } th scope="col" { "Evidence" } } }
                    tbody {
                        @for c in &v.checks {
                            tr {
                                th scope="row" { (c.name) }
                                td { @let r = result_str(c.result); span class=(r) { (r) } }
                                td { @match &c.evidence { Some(e) => (outside_link(e, "evidence")), None => span.none { "none" } } }
                            }
                        }
                    }
                }
                dl.facts {
                    @if let Some(b) = v.build_index { dt { "Validates build" } dd { "entry " (b) } }
                    dt { "Signed by" } dd { (signers(&v.signers)) }
                    dt { "Entry hash" } dd { code { (v.hash) } }
                }
            }
        },
        Step::Promotion(p) => html! {
            li.step.promotion data-entry=(p.index) {
                h3 { span.kind.promotion { "promotion" } " entry " (p.index) " · " (time(&p.recorded_at)) }
                dl.facts {
                    dt { "Into" } dd { @if let Some(f) = &p.from { (env_link(page, f)) " → " } (env_link(page, &p.to)) }
                    dt { "On the evidence of" } dd { "build entry " (p.build_index) @if !p.validation_indexes.is_empty() {
                        ", validation entries " (p.validation_indexes.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")) } }
                    @if let Some(t) = &p.tag_target { dt { "Tag moved" } dd { code { (t) } } }
                    dt { "Signed by" } dd { (signers(&p.signers)) }
                    dt { "Entry hash" } dd { code { (p.hash) } }
                }
            }
        },
    }
}

fn release_list(page: &Page, rows: &[ReleaseRow]) -> Markup {
    html! {
        @if rows.is_empty() { p { "No build names a release." } }
        @else {
            table #releases {
                caption { "Every release the builds name" }
                thead { tr { th scope="col" { "Release" } th scope="col" { "Builds" } } }
                tbody { @for r in rows {
                    tr { td { a href=(page.link(&Page::Release(r.release.clone()), "html")) { (r.release) } } td.num { (r.builds) } }
                } }
            }
        }
    }
}

fn release(page: &Page, r: &ReleasePage) -> Markup {
    html! {
        table #artifacts {
            caption { "The builds of release " (r.release) " and where each digest went" }
            thead { tr {
                th scope="col" { "Artifact" } th scope="col" { "Entry" } th scope="col" { "Digest" }
                th scope="col" { "Source revision" } th scope="col" { "Promoted to" }
            } }
            tbody { @for b in &r.builds {
                tr data-artifact=(b.artifact) {
                    th scope="row" { (b.artifact) @if b.dev_only { " (dev-only)" } }
                    td.num { (b.index) }
                    td { @match &b.digest { Some(d) => (digest_link(page, d)), None => span.none { "tag-only" } } }
                    td { @match &b.revision { Some(g) => code { (g) }, None => span.none { "not recorded" } } }
                    td { (env_links(page, &b.promoted_to)) }
                }
            } }
        }
    }
}

fn environment(page: &Page, e: &EnvironmentPage) -> Markup {
    let h = &e.history;
    html! {
        dl.facts #environment data-current=[h.current.as_deref()] {
            dt { "Running now" } dd.current { @match &h.current { Some(d) => (digest_link(page, d)), None => span.none { "nothing promoted yet" } } }
            dt { "Roll back to" } dd.rollback { @match &h.rollback_target { Some(d) => (digest_link(page, d)), None => span.none { "none" } } }
            @if e.in_policy {
                dt { "Requires" } dd {
                    @if let Some(r) = &e.requires { "promotion to " (env_link(page, r)) " first; " }
                    "checks: " (list_or(&e.required_checks, "none"))
                }
                dt { "Tags it may move" } dd { (list_or(&e.tags, "none")) }
            } @else {
                dt { "Policy" } dd { "No longer in the policy in force: no promotion into it is allowed." }
            }
        }
        h2 { "Promotion history" }
        @if h.promotions.is_empty() { p { "Nothing was ever promoted into " (h.environment) "." } }
        @else {
            table #history {
                caption { "Promotions into " (h.environment) ", newest first" }
                thead { tr {
                    th scope="col" { "Entry" } th scope="col" { "Time" } th scope="col" { "Digest" }
                    th scope="col" { "From" } th scope="col" { "Signed by" } th scope="col" { "Tag moved" }
                } }
                tbody { @for p in &h.promotions {
                    tr {
                        td.num { (p.index) } td { (time(&p.recorded_at)) } td { (digest_link(page, &p.digest)) }
                        td { @match &p.from { Some(f) => (env_link(page, f)), None => span.none { "—" } } }
                        td { (signers(&p.signers)) }
                        td { @match &p.tag_target { Some(t) => code { (t) }, None => span.none { "none" } } }
                    }
                } }
            }
        }
    }
}

fn policy(page: &Page, versions: &[PolicyVersion]) -> Markup {
    html! {
        p { "Every policy the chain has had, newest first: the keys and their roles, the environments and the checks each requires, what each change changed, and who signed it." }
        ol.policies reversed {
            @for v in versions.iter().rev() {
                li.policy #{"policy-" (v.index)} {
                    h2 { "Policy of entry " (v.index) " · " (time(&v.recorded_at)) }
                    p { "Signed by " (signers(&v.signers)) "; a change needs " (v.policy_threshold) " policy-role signature(s)." }
                    h3 { "What changed" }
                    ul.changes { @for c in &v.changes { li { (c) } } }
                    table.keys {
                        caption { "Keys of the policy of entry " (v.index) }
                        thead { tr { th scope="col" { "Key" } th scope="col" { "Id" } th scope="col" { "Roles" } } }
                        tbody { @for k in &v.keys { tr { th scope="row" { (k.name) } td { code { (k.id) } } td { (k.roles.join(", ")) } } } }
                    }
                    table.environments {
                        caption { "Environments of the policy of entry " (v.index) }
                        thead { tr { th scope="col" { "Environment" } th scope="col" { "Comes from" } th scope="col" { "Required checks" } th scope="col" { "Tags" } } }
                        tbody { @for e in &v.environments { tr {
                            th scope="row" { (env_link(page, &e.name)) }
                            td { (e.requires.as_deref().unwrap_or("—")) }
                            td { (list_or(&e.required_checks, "none")) }
                            td { (list_or(&e.tags, &e.name)) }
                        } } }
                    }
                    p.small { "Log key " code { (v.log_key) } "; entry hash " code { (v.hash) } }
                }
            }
        }
    }
}
