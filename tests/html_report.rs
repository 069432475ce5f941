//! report.html through the real binary: the demo's page is private (0600), self-contained (no
//! external stylesheet, script or image), escapes hostile identifiers and sample values, and
//! renders in headless Chromium with the verdict in its summary.
//!
//! Chromium is the Debian package `chromium`. Without it these checks fail under CI=true and are
//! skipped, loudly, elsewhere.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rehearse");

fn rehearse(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN).current_dir(dir).args(args).output().expect("rehearse runs")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every `src="..."` and `href="..."` value of the page (escaped text cannot hold a raw quote, so
/// these are real attributes): none may leave the file.
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\"", "src='", "href='"] {
        let quote = attr.chars().last().unwrap();
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            out.push(rest.split(quote).next().unwrap_or("").to_string());
        }
    }
    out
}

fn assert_self_contained(html: &str) {
    for link in links(html) {
        assert!(link.starts_with('#'), "report.html links outside itself: {link:?}");
    }
    let lower = html.to_lowercase();
    for banned in ["<link", "@import", "url(", "<iframe", "<img", "<object", "<embed"] {
        assert!(!lower.contains(banned), "report.html must be self-contained, found {banned:?}");
    }
}

/// The Chromium binary, or None after a loud note (a failure under CI=true).
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("chromium")).find(|p| p.is_file()));
    if found.is_none() {
        let msg = "chromium is not installed: `apt-get install chromium` (Debian) to check that report.html renders";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        eprintln!("!!! SKIPPED the headless-browser half of html_report: {msg}");
        eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
    }
    found
}

/// Run headless Chromium on `page` with `extra` arguments; its stdout. A private profile, no
/// network services, and a time limit, so a hung browser fails the test instead of blocking it.
fn headless(chromium: &Path, profile: &Path, page: &Path, extra: &[&str]) -> String {
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    // Both pipes drain in threads: a chatty browser must not block on a full pipe.
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let err_reader = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = out_reader.join().unwrap();
            let err = err_reader.join().unwrap();
            assert!(status.success(), "chromium {extra:?} failed ({status}): {err}");
            return out;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chromium {extra:?} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn demo_report_html_is_private_self_contained_and_renders_in_chromium() {
    let d = tempfile::tempdir().unwrap();
    let demo = d.path().join("demo");
    let o = rehearse(d.path(), &["demo", demo.to_str().unwrap()]);
    assert!(o.status.success(), "rehearse demo: {}", text(&o.stderr));
    let page = demo.join("work/report.html");
    assert!(page.is_file(), "rehearse run writes report.html into the workdir");
    #[cfg(unix)]
    assert_eq!(mode(&page), 0o600, "report.html holds sample values: private to its owner");

    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_self_contained(&html);
    assert!(html.contains(r#"id="verdict">HUMAN<"#), "the verdict badge carries its word");
    assert!(html.contains("class=\"line todo\""), "the script's TODO(rehearse) lines are marked");
    assert!(html.contains("Probe query"), "probe SQL is offered for re-running");

    // `rehearse report --format html` re-renders the very same page from report.json.
    let again = rehearse(&demo, &["report", "--config", "upgrade.yaml", "--format", "html"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(text(&again.stdout), html, "re-rendering gives the page the run wrote");

    let Some(chromium) = chromium() else { return };
    let dom = headless(&chromium, &d.path().join("profile"), &page, &["--dump-dom"]);
    assert!(dom.contains(r#"id="verdict">HUMAN</span>"#), "the summary renders its verdict: {dom:.400}");
    assert!(dom.contains("Needs your decision"), "the findings for a human are called out");
    assert!(dom.contains("NOT RUN"), "the rehearsal status is in the summary");

    let shot = d.path().join("report.png");
    headless(
        &chromium,
        &d.path().join("profile2"),
        &page,
        &[&format!("--screenshot={}", shot.display()), "--window-size=1280,2000"],
    );
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "a real screenshot ({} bytes)", png.len());
    // Kept for people to look at: target/tmp/html_report/report.png.
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html_report");
    std::fs::create_dir_all(&keep).unwrap();
    std::fs::copy(&shot, keep.join("report.png")).unwrap();
    eprintln!("screenshot of the demo's report.html: {}", keep.join("report.png").display());
}

/// Live data is hostile input: a table named `note&<b>` and a dropped column holding markup.
fn hostile(dir: &Path) {
    let c = rusqlite::Connection::open(dir.join("live.db")).unwrap();
    c.execute_batch(
        r#"CREATE TABLE "note&<b>" (id INTEGER PRIMARY KEY, body TEXT NOT NULL, remark TEXT);
           INSERT INTO "note&<b>" VALUES
             (1, 'one', '<script>alert(1)</script>'),
             (2, 'two', 'x " '' & </pre><img src=x onerror=alert(2)>'),
             (3, 'three', '{{ body }} {% raw %}'),
             (4, 'four', NULL);"#,
    )
    .unwrap();
    std::fs::write(dir.join("schema.sql"), r#"CREATE TABLE "note&<b>" (id INTEGER PRIMARY KEY, body TEXT NOT NULL);"#)
        .unwrap();
    std::fs::write(
        dir.join("upgrade.yaml"),
        "live: { url: \"sqlite:live.db\" }\nschema: { sql: schema.sql }\nworkdir: work\n",
    )
    .unwrap();
}

#[test]
fn hostile_identifiers_and_sample_values_are_escaped_in_report_html() {
    let d = tempfile::tempdir().unwrap();
    hostile(d.path());
    let o = rehearse(d.path(), &["run", "--config", "upgrade.yaml", "--format", "html"]);
    assert_eq!(o.status.code(), Some(3), "an unaccepted loss waits for a human: {}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(stdout.starts_with("<!DOCTYPE html>"), "run --format html prints the page on stdout");

    let page = d.path().join("work/report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(stdout, html, "stdout and report.html are the same page");
    assert_self_contained(&html);
    assert!(!html.contains("<script>alert(1)"), "a sample value became markup");
    assert!(html.contains("&lt;script&gt;alert(1)"), "the sample value is shown, escaped");
    assert!(!html.contains("<img src=x"), "a sample value became markup");
    assert!(!html.contains("note&<b>"), "a table name became markup");
    assert!(html.contains("note&amp;&lt;b&gt;"), "the table name is shown, escaped");
    assert!(html.contains("{{ body }}"), "values are data, never template code");
    assert_eq!(html.matches("<script>").count(), 1, "only the page's own print helper is a script");

    // The Markdown report keeps values as they are: escaping is the HTML template's alone.
    let md = std::fs::read_to_string(d.path().join("work/report.md")).unwrap();
    assert!(md.contains("<script>alert(1)</script>"));

    // --format json stays the JSON contract and nothing else.
    let o = rehearse(d.path(), &["run", "--config", "upgrade.yaml", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("--format json prints only JSON");
    assert!(v.get("script_text").is_none(), "the script's text stays out of the JSON contract");

    let Some(chromium) = chromium() else { return };
    let dom = headless(&chromium, &d.path().join("profile"), &page, &["--dump-dom"]);
    assert!(dom.contains(r#"id="verdict">LOSSY</span>"#), "the summary renders: {dom:.400}");
    assert!(!dom.contains("<img"), "no element was injected by a value");
    assert_eq!(dom.matches("<script").count(), 1, "no script was injected by a value");
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the value is text in the page");
}
