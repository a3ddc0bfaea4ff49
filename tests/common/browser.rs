//! A real browser for the audit view's tests: headless Chromium, run as a
//! process per page (`--dump-dom` for the DOM after parsing and styling,
//! `--screenshot` for people to look at), with a profile of its own in a
//! temporary directory. Fails, rather than skips, when Chromium is missing:
//! the test command installs it.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `$PROVLEDGER_CHROMIUM`, else `chromium` on the PATH.
pub fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("PROVLEDGER_CHROMIUM") {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .flat_map(|d| ["chromium", "chromium-browser"].map(|n| d.join(n)))
        .find(|p| p.is_file());
    found.expect("no chromium on the PATH: run ./scripts/test.sh, which installs Debian's chromium")
}

/// Where screenshots go: `target/ui-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(args: &[String]) -> Vec<u8> {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--hide-scrollbars",
            "--force-color-profile=srgb",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = Vec::new();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        std::io::Read::read_to_end(&mut stdout, &mut out).unwrap();
        out
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium {args:?}: {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium {args:?} did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

/// The DOM of `url` once loaded, serialized.
pub fn dom(url: &str) -> scraper::Html {
    let out = run(&["--dump-dom".into(), url.into()]);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("<html"), "chromium showed no page for {url}:\n{text}");
    scraper::Html::parse_document(&text)
}

/// Saves a screenshot of `url` as `target/ui-screenshots/NAME.png`.
pub fn screenshot(url: &str, name: &str, height: u32) -> PathBuf {
    let path = screenshot_dir().join(format!("{name}.png"));
    let _ = std::fs::remove_file(&path);
    run(&[format!("--screenshot={}", path.display()), format!("--window-size=1280,{height}"), url.into()]);
    let png = std::fs::read(&path).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", path.display()));
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} is no real screenshot", path.display());
    path
}

/// The text of the first element matching `css`, whitespace collapsed.
pub fn text(doc: &scraper::Html, css: &str) -> String {
    let sel = scraper::Selector::parse(css).unwrap();
    let el = doc.select(&sel).next().unwrap_or_else(|| panic!("no element matches {css}"));
    el.text().collect::<Vec<_>>().join(" ").split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An attribute of the first element matching `css`.
pub fn attr(doc: &scraper::Html, css: &str, name: &str) -> Option<String> {
    let sel = scraper::Selector::parse(css).unwrap();
    doc.select(&sel).next().and_then(|e| e.value().attr(name)).map(str::to_string)
}

/// How many elements match `css`.
pub fn count(doc: &scraper::Html, css: &str) -> usize {
    doc.select(&scraper::Selector::parse(css).unwrap()).count()
}
