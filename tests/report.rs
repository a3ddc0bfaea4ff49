//! The audit view in a real browser: `provledger report` (the static site)
//! and the live pages under `/ui/` of `provledger serve`, opened in headless
//! Chromium; the DOM is checked for the facts, screenshots are saved under
//! `target/ui-screenshots/`, and every link of the static site is followed.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::browser::{self, attr, count, text};
use common::server::Served;
use common::{Env, GIT_SHA, digest, image};
use scraper::{Html, Selector};
use serde_json::Value;

/// A ledger with every kind of fact the pages show, and its genesis:
/// `app` promoted into prod (after a failed integration run that a rerun
/// superseded), a rebuild of its revision that no gate allows, a dev-only
/// record, a release of two artifacts, and a policy change that adds a
/// check to prod.
fn story() -> (Env, String) {
    let (env, genesis) = Env::initialised_with_log_key();
    let app = image("app");
    env.build_with(
        &app,
        &[
            "--git-sha",
            GIT_SHA,
            "--artifact",
            "app",
            "--ci-run-url",
            "https://ci.example.com/runs/7",
            "--ci-run-id",
            "7",
        ],
    );
    env.validate(&app, &["unit=pass", "integration=fail"]);
    env.validate(&app, &["integration=pass"]);
    env.promote(&app, "dev");
    env.promote(&app, "staging");
    env.validate(&app, &["e2e=pass", "vuln-scan=pass"]);
    env.promote(&app, "prod");
    // The same revision built again, with another digest: denied everywhere.
    env.build_with(&image("rebuilt"), &["--git-sha", GIT_SHA, "--artifact", "app"]);
    env.build_with("registry.example.com/acme/app:dev", &["--allow-tag"]);
    // A newer digest in dev: the promoted one becomes dev's rollback target.
    env.build(&image("second"));
    env.validate(&image("second"), &["unit=pass"]);
    env.promote(&image("second"), "dev");
    // A release whose id is also the name of a list page.
    env.build_with(&image("tool"), &["--git-sha", GIT_SHA, "--artifact", "tool", "--release", "index"]);
    for (artifact, seed) in [("frontend", "r1-frontend"), ("backend", "r1-backend")] {
        let sha = "89abcdef0123456789abcdef0123456789abcdef";
        env.build_with(&image(seed), &["--git-sha", sha, "--artifact", artifact, "--release", "r1"]);
    }
    let policy = std::fs::read_to_string(env.path("policy.toml")).unwrap();
    let changed = policy.replace(
        r#"required_checks = ["unit", "integration", "e2e", "vuln-scan"]"#,
        r#"required_checks = ["unit", "integration", "e2e", "vuln-scan", "pen-test"]"#,
    );
    assert_ne!(policy, changed, "the example policy changed shape");
    std::fs::write(env.path("policy-2.toml"), changed).unwrap();
    env.ok(&["record", "policy", "--key", &env.key("root"), "--policy", &env.path("policy-2.toml")]);
    (env, genesis)
}

fn report(env: &Env, out: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["--json", "report", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (code, stdout, _) = env.run(&args);
    (code, serde_json::from_str(stdout.lines().last().unwrap_or("null")).unwrap_or(Value::Null))
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.canonicalize().unwrap().display())
}

fn page_of(d: &str) -> String {
    format!("digests/sha256-{}.html", d.strip_prefix("sha256:").unwrap())
}

fn select<'a>(doc: &'a Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
    doc.select(&Selector::parse(css).unwrap()).collect()
}

/// Every page of the site: well-formed for people and for assistive
/// technology, nothing loaded from elsewhere, every link leading to a page
/// (and fragment) that exists. Returns the pages found.
fn check_site(root: &Path) -> BTreeSet<PathBuf> {
    let mut pages = BTreeSet::new();
    let mut todo = vec![root.join("index.html")];
    let mut problems = Vec::new();
    while let Some(page) = todo.pop() {
        let page = page.canonicalize().unwrap_or_else(|_| panic!("{} is linked but missing", page.display()));
        if !pages.insert(page.clone()) {
            continue;
        }
        let html = std::fs::read_to_string(&page).unwrap();
        let doc = Html::parse_document(&html);
        let name = page.strip_prefix(root.canonicalize().unwrap()).unwrap().display().to_string();
        let mut problem = |what: String| problems.push(format!("{name}: {what}"));
        if attr(&doc, "html", "lang").as_deref() != Some("en") {
            problem("no lang on <html>".into());
        }
        if count(&doc, "h1") != 1 {
            problem(format!("{} <h1>", count(&doc, "h1")));
        }
        if count(&doc, "#verification[data-verification]") != 1 {
            problem("no verification banner".into());
        }
        if count(&doc, "script, iframe, object, embed, img:not([alt])") != 0 {
            problem("a script, frame, object or image without alt".into());
        }
        for th in select(&doc, "th") {
            if th.value().attr("scope").is_none() {
                problem(format!("<th> without scope: {}", th.text().collect::<String>()));
            }
        }
        for t in select(&doc, "table") {
            if t.select(&Selector::parse("caption").unwrap()).next().is_none() {
                problem("a table without a caption".into());
            }
        }
        // Headings go down one level at a time.
        let mut level = 0;
        for h in select(&doc, "h1, h2, h3, h4, h5, h6") {
            let l: usize = h.value().name()[1..].parse().unwrap();
            if l > level + 1 {
                problem(format!("heading h{l} after h{level}"));
            }
            level = l;
        }
        if html.contains("@import") || html.contains("url(") {
            problem("a stylesheet import".into());
        }
        for el in select(&doc, "[href], [src]") {
            let link = el.value().attr("href").or(el.value().attr("src")).unwrap();
            if link.starts_with("https://") || link.starts_with("http://") {
                // Evidence and CI links leave the site; they are never loaded.
                if el.value().name() != "a" {
                    problem(format!("<{}> loads {link}", el.value().name()));
                }
                continue;
            }
            if link.contains(':') {
                problem(format!("a {link} link"));
                continue;
            }
            let (file, fragment) = link.split_once('#').unwrap_or((link, ""));
            let target = if file.is_empty() { page.clone() } else { page.parent().unwrap().join(file) };
            if !target.is_file() {
                problem(format!("broken link {link}"));
                continue;
            }
            if !fragment.is_empty() {
                let there = Html::parse_document(&std::fs::read_to_string(&target).unwrap());
                if count(&there, &format!("[id=\"{fragment}\"]")) == 0 {
                    problem(format!("link {link}: no #{fragment} there"));
                }
            }
            if file.ends_with(".html") {
                todo.push(target);
            } else if file.ends_with(".json") {
                let json: Value = serde_json::from_slice(&std::fs::read(&target).unwrap())
                    .unwrap_or_else(|e| panic!("{link} from {name} is not JSON: {e}"));
                assert!(json["verification"]["status"].is_string(), "{link} has no verification");
            }
        }
    }
    assert!(problems.is_empty(), "the site has problems:\n{}", problems.join("\n"));
    pages
}

#[test]
fn the_static_report_shows_the_verified_facts_in_a_browser() {
    let (env, genesis) = story();
    let out = env.path("report");
    let (code, written) = report(&env, Path::new(&out), &["--genesis", &genesis]);
    assert_eq!(code, 0, "{written}");
    assert_eq!(written["genesis"], genesis.as_str());
    let root = PathBuf::from(&out);

    // Every page reachable from the overview, every link good; and every
    // page written is reachable.
    let reached = check_site(&root);
    assert_eq!(reached.len(), written["pages"].as_u64().unwrap() as usize);
    let d = |s: &str| digest(s);
    for rel in [
        page_of(&d("app")),
        page_of(&d("rebuilt")),
        "environments/prod.html".into(),
        "releases/r1.html".into(),
        "releases/index.html".into(),
        "releases.html".into(),
    ] {
        assert!(reached.contains(&root.join(&rel).canonicalize().unwrap()), "{rel} is not linked");
    }

    // The overview, as the browser has it.
    let overview = browser::dom(&file_url(&root.join("index.html")));
    assert_eq!(attr(&overview, "#verification", "data-verification").as_deref(), Some("verified"));
    assert!(text(&overview, "#verification h2").contains("Verified"));
    assert_eq!(text(&overview, "[data-fact=genesis]"), genesis);
    let entries = written["entries"].as_u64().unwrap();
    assert_eq!(text(&overview, "[data-fact=size]"), entries.to_string());
    assert_eq!(text(&overview, "[data-fact=root]"), written["checkpoint"]["root"].as_str().unwrap());
    assert_eq!(attr(&overview, "#env-prod", "data-current"), Some(d("app")));
    assert!(text(&overview, "#env-prod .rollback").contains("none"));
    assert_eq!(attr(&overview, "#env-dev", "data-current"), Some(d("second")));
    assert_eq!(attr(&overview, "#env-dev .rollback a", "title"), Some(d("app")));
    assert_eq!(count(&overview, "#recent tbody tr"), 20.min(entries as usize));
    assert!(text(&overview, "#recent tbody tr").contains("policy"), "the newest entry is the policy change");

    // The denied rebuild: every gate denies it, saying why, and the findings say what it is.
    let rebuilt = browser::dom(&file_url(&root.join(page_of(&d("rebuilt")))));
    assert_eq!(text(&rebuilt, "#digest"), d("rebuilt"));
    for env_name in ["dev", "staging", "prod"] {
        let row = format!("#gates tr[data-environment={env_name}]");
        assert_eq!(attr(&rebuilt, &row, "data-allowed").as_deref(), Some("false"), "{env_name}");
        assert!(text(&rebuilt, &row).contains("has no validation of"), "{}", text(&rebuilt, &row));
    }
    let findings = text(&rebuilt, "#findings");
    assert!(findings.contains("Rebuild.") && findings.contains(&d("app")), "{findings}");
    assert!(
        findings.contains("Dev-only record.") && findings.contains("registry.example.com/acme/app:dev"),
        "{findings}"
    );
    assert!(findings.contains("prod now requires pen-test"), "{findings}");

    // The promoted digest: its timeline, the superseded outcome, the CI run.
    let app = browser::dom(&file_url(&root.join(page_of(&d("app")))));
    assert_eq!(count(&app, "#timeline > li"), 7, "1 build, 3 validations, 3 promotions");
    assert_eq!(attr(&app, "#gates tr[data-environment=prod]", "data-allowed").as_deref(), Some("false"));
    assert_eq!(attr(&app, "#gates tr[data-environment=staging]", "data-allowed").as_deref(), Some("true"));
    assert!(text(&app, "#gates tr[data-environment=staging]").contains("yes, entry 5"));
    assert!(text(&app, "#gates tr[data-environment=prod]").contains("pen-test"));
    let findings = text(&app, "#findings");
    assert!(findings.contains("Check integration : fail in entry 2 was superseded by pass in entry 3"), "{findings}");
    assert_eq!(
        attr(&app, "a.outside[href^='https://ci.example.com/runs/7']", "rel").as_deref(),
        Some("noopener noreferrer nofollow")
    );

    // The environment, the release, the policy history.
    let prod = browser::dom(&file_url(&root.join("environments/prod.html")));
    assert_eq!(attr(&prod, "#environment", "data-current"), Some(d("app")));
    assert_eq!(count(&prod, "#history tbody tr"), 1);
    let r1 = browser::dom(&file_url(&root.join("releases/r1.html")));
    assert_eq!(count(&r1, "#artifacts tbody tr"), 2);
    assert!(text(&r1, "#artifacts tr[data-artifact=backend]").contains("nowhere"));
    let policy = browser::dom(&file_url(&root.join("policy.html")));
    assert_eq!(count(&policy, "li.policy"), 2);
    assert!(text(&policy, "li.policy").contains("prod now requires pen-test"), "newest first");
    assert!(text(&policy, "li.policy").contains("Signed by root"));

    // The JSON forms say the same.
    let index: Value = serde_json::from_slice(&std::fs::read(root.join("index.json")).unwrap()).unwrap();
    let prod_json = index["environments"].as_array().unwrap().iter().find(|e| e["name"] == "prod").unwrap();
    assert_eq!(prod_json["current"], d("app").as_str());

    for (page, name, height) in [
        ("index.html".to_string(), "report-overview", 1500),
        (page_of(&d("rebuilt")), "report-denied-digest", 1700),
        (page_of(&d("app")), "report-promoted-digest", 2600),
        ("environments/prod.html".into(), "report-environment-prod", 900),
        ("releases/r1.html".into(), "report-release", 700),
        ("policy.html".into(), "report-policy-history", 2000),
    ] {
        browser::screenshot(&file_url(&root.join(page)), name, height);
    }
}

#[test]
fn a_tampered_ledger_gets_a_report_that_says_so_on_every_page_and_shows_nothing() {
    let (env, genesis) = Env::with_promotions();
    provledger::store::tamper::edit(&env.ledger(), |c| c.entries[3][40] ^= 0x01).unwrap();
    let out = PathBuf::from(env.path("report"));
    let (code, error) = report(&env, &out, &["--genesis", &genesis]);
    assert_eq!(code, 4, "{error}");
    assert_eq!(error["error"]["index"], 3, "{error}");
    let mut pages = 0;
    for f in walk(&out) {
        let body = std::fs::read_to_string(&f).unwrap();
        // Nothing from the ledger: no digest, no environment (the failure
        // itself may name the entry's signer, as `verify` does).
        let (app, built) = (digest("app"), digest("built-only"));
        for secret in [&app[7..], &built[7..], "staging", "prod"] {
            assert!(!body.contains(secret), "{} shows {secret}:\n{body}", f.display());
        }
        if f.extension().is_some_and(|e| e == "html") {
            pages += 1;
            let doc = Html::parse_document(&body);
            assert_eq!(attr(&doc, "#verification", "data-verification").as_deref(), Some("failed"), "{}", f.display());
            assert_eq!(text(&doc, "[data-fact=index]"), "3");
        } else if f.extension().is_some_and(|e| e == "json") {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["verification"]["status"], "failed");
            assert_eq!(v["verification"]["index"], 3);
        }
    }
    assert_eq!(pages, 4, "the overview, the digest and release lists, the policy history");
    check_site(&out);
    let dom = browser::dom(&file_url(&out.join("index.html")));
    assert!(text(&dom, "#verification").contains("Not verified"));
    assert_eq!(attr(&dom, "#verification", "role").as_deref(), Some("alert"));
    browser::screenshot(&file_url(&out.join("index.html")), "report-tampered", 700);

    // Mended, it reports; under another genesis, it fails the same way.
    provledger::store::tamper::edit(&env.ledger(), |c| c.entries[3][40] ^= 0x01).unwrap();
    assert_eq!(report(&env, &out, &["--genesis", &genesis]).0, 0);
    let (code, error) = report(&env, &out, &["--genesis", &"0".repeat(64)]);
    assert_eq!(code, 4, "{error}");
    let index: Value = serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["verification"]["status"], "failed");
    assert_eq!(index["verification"]["index"], 0);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn a_bundle_is_reported_offline_from_its_genesis_and_a_bad_one_is_not() {
    let (env, genesis) = story();
    let bundle = env.path("ledger.bundle");
    env.ok(&["export", "--out", &bundle]);
    let from_ledger = PathBuf::from(env.path("from-ledger"));
    let from_bundle = PathBuf::from(env.path("from-bundle"));
    assert_eq!(report(&env, &from_ledger, &["--genesis", &genesis]).0, 0);
    let (code, written) = report(&env, &from_bundle, &["--bundle", &bundle, "--genesis", &genesis]);
    assert_eq!(code, 0, "{written}");
    // The same pages, saying the same things (but where and when they were verified).
    let strip = |v: &mut Value| {
        if let Some(o) = v["verification"].as_object_mut() {
            o.remove("source");
            o.remove("verified_at");
        }
    };
    let rel: Vec<PathBuf> =
        walk(&from_ledger).iter().map(|p| p.strip_prefix(&from_ledger).unwrap().to_path_buf()).collect();
    assert_eq!(rel.len(), walk(&from_bundle).len());
    for r in rel.iter().filter(|r| r.extension().is_some_and(|e| e == "json")) {
        let mut a: Value = serde_json::from_slice(&std::fs::read(from_ledger.join(r)).unwrap()).unwrap();
        let mut b: Value = serde_json::from_slice(&std::fs::read(from_bundle.join(r)).unwrap()).unwrap();
        strip(&mut a);
        strip(&mut b);
        assert_eq!(a, b, "{}", r.display());
    }
    let index: Value = serde_json::from_slice(&std::fs::read(from_bundle.join("index.json")).unwrap()).unwrap();
    assert!(index["verification"]["source"].as_str().unwrap().starts_with("bundle "));

    // The wrong genesis, and one flipped byte: a failure report, exit 4.
    let (code, _) = report(&env, &from_bundle, &["--bundle", &bundle, "--genesis", &"1".repeat(64)]);
    assert_eq!(code, 4);
    let index: Value = serde_json::from_slice(&std::fs::read(from_bundle.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["verification"]["status"], "failed");
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 0x01;
    std::fs::write(&bundle, bytes).unwrap();
    let (code, _) = report(&env, &from_bundle, &["--bundle", &bundle, "--genesis", &genesis]);
    assert_eq!(code, 4);
    let dom = browser::dom(&file_url(&from_bundle.join("index.html")));
    assert_eq!(attr(&dom, "#verification", "data-verification").as_deref(), Some("failed"));
}

#[test]
fn a_report_replaces_its_own_directory_and_nothing_else() {
    let (env, _) = Env::with_promotions();
    let out = PathBuf::from(env.path("site"));
    assert_eq!(report(&env, &out, &[]).0, 0);
    std::fs::write(out.join("stale.html"), "old").unwrap();
    assert_eq!(report(&env, &out, &[]).0, 0);
    assert!(!out.join("stale.html").exists(), "a report replaces the one before, whole");
    assert!(out.join("index.html").is_file());

    let mine = PathBuf::from(env.path("mine"));
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep me").unwrap();
    let (code, error) = report(&env, &mine, &[]);
    assert_eq!(code, 2, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("not a report"), "{error}");
    assert_eq!(std::fs::read_to_string(mine.join("notes.txt")).unwrap(), "keep me");
    assert_eq!(std::fs::read_dir(&mine).unwrap().count(), 1);
    // Nothing is left beside them.
    let left: Vec<String> = std::fs::read_dir(env.path("."))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".new-") || n.contains(".old-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn ledger_text_is_shown_as_text_and_only_web_links_are_links() {
    let (env, _) = Env::initialised_with_log_key();
    let app = image("hostile");
    env.build_with(
        &app,
        &["--git-sha", GIT_SHA, "--ci-run-url", "javascript:alert(1)", "--ci-workflow", "<script>alert(2)</script>"],
    );
    env.validate(&app, &["unit=pass"]);
    let out = PathBuf::from(env.path("report"));
    assert_eq!(report(&env, &out, &[]).0, 0);
    let page = std::fs::read_to_string(out.join(page_of(&digest("hostile")))).unwrap();
    assert!(!page.contains("<script>"), "markup from the ledger is escaped");
    assert!(page.contains("&lt;script&gt;alert(2)&lt;/script&gt;"));
    let doc = Html::parse_document(&page);
    assert_eq!(count(&doc, "a[href^='javascript']"), 0);
    assert!(text(&doc, "#timeline").contains("javascript:alert(1)"), "shown, as text");
}

fn get(url: &str) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut r = agent.get(url).call().unwrap();
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (r.status().as_u16(), ct, r.body_mut().read_to_string().unwrap())
}

/// Waits until the server has verified its chain (its pages say pending before).
fn verified_index(base: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _, body) = get(&format!("{base}/ui/index.json"));
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&body).unwrap();
        match v["verification"]["status"].as_str() {
            Some("verified") => return v,
            Some("pending") if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("the server's view is {other:?}: {v}"),
        }
    }
}

#[test]
fn the_live_pages_show_the_verified_ledger_and_what_is_appended_to_it() {
    let (env, genesis) = story();
    let server = Served::spawn(&env.ledger(), &["serve", "--listen", "127.0.0.1:0"], Stdio::null());
    let base = server.url.clone();
    let index = verified_index(&base);
    assert_eq!(index["verification"]["genesis"], genesis.as_str());

    let overview = browser::dom(&format!("{base}/ui/"));
    assert_eq!(attr(&overview, "#verification", "data-verification").as_deref(), Some("verified"));
    assert_eq!(attr(&overview, "#env-prod", "data-current"), Some(digest("app")));
    browser::screenshot(&format!("{base}/ui/"), "live-overview", 1500);
    let rebuilt = browser::dom(&format!("{base}/ui/{}", page_of(&digest("rebuilt"))));
    assert_eq!(attr(&rebuilt, "#gates tr[data-environment=prod]", "data-allowed").as_deref(), Some("false"));
    assert!(text(&rebuilt, "#findings").contains("Rebuild."));

    // Every link of the live site answers, as HTML or JSON, read-only.
    let mut seen = BTreeSet::new();
    let mut todo = vec![format!("{base}/ui/")];
    while let Some(url) = todo.pop() {
        if !seen.insert(url.clone()) {
            continue;
        }
        let (status, ct, body) = get(&url);
        assert_eq!(status, 200, "{url}");
        if !ct.starts_with("text/html") {
            continue;
        }
        let doc = Html::parse_document(&body);
        for el in select(&doc, "a[href], link[href]") {
            let link = el.value().attr("href").unwrap();
            if link.starts_with("http") || link.starts_with('#') {
                continue;
            }
            let dir = &url[..url.rfind('/').unwrap() + 1];
            let mut target = format!("{dir}{}", link.split('#').next().unwrap());
            while let Some(i) = target.find("/../") {
                let before = target[..i].rfind('/').unwrap();
                target.replace_range(before..i + 3, "");
            }
            todo.push(target);
        }
    }
    assert!(seen.len() >= 12, "{seen:?}");
    assert_eq!(get(&format!("{base}/ui/digests/sha256-{}.html", "0".repeat(64))).0, 404);
    assert_eq!(get(&format!("{base}/ui/environments/nowhere.html")).0, 404);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    assert_eq!(agent.post(&format!("{base}/ui/index.html")).send("x").unwrap().status().as_u16(), 405);

    // A build appended through the server shows at once, verified on append.
    let before = index["recent"][0]["index"].as_u64().unwrap();
    let key = env.key("ci");
    env.json(&[
        "--server",
        &base,
        "--server-genesis",
        &genesis,
        "--mirror",
        &env.path("mirror"),
        "record",
        "build",
        "--key",
        &key,
        "--image",
        &image("late"),
        "--offline",
    ]);
    let index = verified_index(&base);
    assert_eq!(index["recent"][0]["index"].as_u64().unwrap(), before + 1);
    assert_eq!(index["recent"][0]["digest"], digest("late").as_str());
    assert_eq!(index["verification"]["checkpoint"]["size"].as_u64().unwrap(), before + 2);
    let (status, _, page) = get(&format!("{base}/ui/{}", page_of(&digest("late"))));
    assert_eq!(status, 200);
    assert!(page.contains(&digest("late")));
    server.stop();
}

#[test]
fn a_server_whose_chain_fails_verification_shows_the_failure_on_every_page() {
    let (env, _) = Env::with_promotions();
    provledger::store::tamper::edit(&env.ledger(), |c| c.entries[2][60] ^= 0x01).unwrap();
    let server = Served::spawn(&env.ledger(), &["serve", "--listen", "127.0.0.1:0"], Stdio::null());
    let base = server.url.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    let index = loop {
        let v: Value = serde_json::from_str(&get(&format!("{base}/ui/index.json")).2).unwrap();
        if v["verification"]["status"] != "pending" || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(index["verification"]["status"], "failed", "{index}");
    assert_eq!(index["verification"]["index"], 2);
    for page in ["", "digests.html", "releases.html", "policy.html"] {
        let (status, _, body) = get(&format!("{base}/ui/{page}"));
        assert_eq!(status, 200);
        let doc = Html::parse_document(&body);
        assert_eq!(attr(&doc, "#verification", "data-verification").as_deref(), Some("failed"), "{page}");
        assert!(!body.contains(digest("app").trim_start_matches("sha256:")), "{page} shows a digest");
    }
    assert_eq!(get(&format!("{base}/ui/environments/prod.html")).0, 404, "no page is made from an unverified chain");
    let dom = browser::dom(&format!("{base}/ui/"));
    assert!(text(&dom, "#verification").contains("Not verified"));
    server.stop();
}
