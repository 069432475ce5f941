//! Upgrade stories (`tests/scenarios/*.yaml`, format in the scenarios README the company keeps, and
//! summed up below) run through the real binary on one engine, with every check the company's
//! acceptance tool makes, plus a few of our own (exit code, JSON contract, unexpected findings,
//! script TODO count, the test copy's exact path).
//!
//! Format: `name`, `story`, `engines`, `pending` (ours: engines where the story is not implemented
//! yet; skipped there), `live` (+ `live_<engine>`), `target` (+ `target_<engine>`), `hints`,
//! `expect` { verdict, findings [{kind, table, column?, verdict, evidence?}], rehearsal, after
//! [{sql, sql_<engine>?, rows}], edit? (ours: see `Edit`) }, `variants` [{story?, live*, target*, hints?, expect}]. A variant
//! inherits what it does not set, except `expect`.

use super::db::{Engine, LiveDb, Server};
use super::{make_app_repo, rehearse, write_yaml, Temp};
use serde::Deserialize;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub story: String,
    pub engines: Vec<String>,
    /// Engines where this story is not implemented yet: skipped there (say which issue in a comment).
    #[serde(default)]
    pub pending: Vec<String>,
    pub live: Option<String>,
    pub live_sqlite: Option<String>,
    pub live_postgres: Option<String>,
    pub live_mysql: Option<String>,
    pub target: Option<String>,
    pub target_sqlite: Option<String>,
    pub target_postgres: Option<String>,
    pub target_mysql: Option<String>,
    #[serde(default)]
    pub hints: Option<Yaml>,
    pub expect: Expect,
    #[serde(default)]
    pub variants: Vec<Variant>,
    #[serde(skip)]
    pub file: PathBuf,
}

/// `live`/`target` and their per-engine replacements, in a story or a variant. (Written out in
/// both rather than `#[serde(flatten)]`, which does not work with `deny_unknown_fields`.)
macro_rules! engine_sql {
    ($t:ty) => {
        impl $t {
            /// `key_<engine>`, then `key`.
            fn pick(&self, key: &str, engine: Engine) -> Option<&String> {
                let (generic, sqlite, postgres, mysql) = match key {
                    "live" => (&self.live, &self.live_sqlite, &self.live_postgres, &self.live_mysql),
                    _ => (&self.target, &self.target_sqlite, &self.target_postgres, &self.target_mysql),
                };
                let specific = match engine {
                    Engine::Sqlite => sqlite,
                    Engine::Postgres => postgres,
                    Engine::Mysql => mysql,
                };
                specific.as_ref().or(generic.as_ref())
            }
        }
    };
}
engine_sql!(Scenario);
engine_sql!(Variant);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    #[serde(default)]
    pub story: Option<String>,
    pub live: Option<String>,
    pub live_sqlite: Option<String>,
    pub live_postgres: Option<String>,
    pub live_mysql: Option<String>,
    pub target: Option<String>,
    pub target_sqlite: Option<String>,
    pub target_postgres: Option<String>,
    pub target_mysql: Option<String>,
    #[serde(default)]
    pub hints: Option<Yaml>,
    pub expect: Expect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub verdict: String,
    /// None: the story does not say (then other findings are not judged either).
    #[serde(default)]
    pub findings: Option<Vec<ExpectedFinding>>,
    pub rehearsal: String,
    #[serde(default)]
    pub after: Vec<After>,
    /// Ours: then decide the script's TODOs as a sysadmin would, rehearse the edited script with
    /// `--script`, and judge that run.
    #[serde(default)]
    pub edit: Option<Edit>,
    /// Ours: text the generated script must contain, and text it must not.
    #[serde(default)]
    pub script_has: Vec<String>,
    #[serde(default)]
    pub script_lacks: Vec<String>,
}

/// `expect.edit`: which draft to uncomment (`draft: B` takes the lines of the block under
/// `-- Draft B`, `draft: ""` the one under `-- Draft:`; `statement: "UPDATE "` every commented
/// line starting with it), the sysadmin hints for the second run, and what it must give.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edit {
    #[serde(default)]
    pub draft: Option<String>,
    #[serde(default)]
    pub statement: Option<String>,
    #[serde(default)]
    pub sysadmin_hints: Option<Yaml>,
    pub rehearsal: String,
    #[serde(default)]
    pub after: Vec<After>,
    /// Strings the text report of the second run must contain.
    #[serde(default)]
    pub report_says: Vec<String>,
}

/// Decide a script's TODOs the way a sysadmin does with an editor: delete the TODO marker lines,
/// and remove the leading `-- ` of the chosen draft's lines. None when the draft is not there.
pub fn uncomment(script: &str, edit: &Edit) -> Option<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut changed = 0;
    for l in script.lines() {
        if l.trim_start().starts_with("-- TODO(rehearse):") {
            in_block = false;
            continue;
        }
        if let Some(label) = &edit.draft {
            let header = if label.is_empty() { "-- Draft:".to_string() } else { format!("-- Draft {label}") };
            if l.starts_with("-- Draft") || l.starts_with("-- ...") || !l.starts_with("-- ") {
                in_block = l.starts_with(&header);
                out.push(l.to_string());
                continue;
            }
            if in_block {
                out.push(l["-- ".len()..].to_string());
                changed += 1;
                continue;
            }
        }
        if let Some(prefix) = &edit.statement {
            if let Some(sql) = l.strip_prefix("-- ").filter(|sql| sql.starts_with(prefix.as_str())) {
                out.push(sql.to_string());
                changed += 1;
                continue;
            }
        }
        out.push(l.to_string());
    }
    (changed > 0).then(|| out.join("\n") + "\n")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFinding {
    pub kind: String,
    pub table: Yaml,
    #[serde(default)]
    pub column: Option<Yaml>,
    pub verdict: String,
    #[serde(default)]
    pub evidence: BTreeMap<String, Yaml>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct After {
    pub sql: String,
    pub sql_sqlite: Option<String>,
    pub sql_postgres: Option<String>,
    pub sql_mysql: Option<String>,
    pub rows: Vec<Vec<Yaml>>,
}

impl After {
    fn sql_for(&self, engine: Engine) -> &str {
        let specific = match engine {
            Engine::Sqlite => &self.sql_sqlite,
            Engine::Postgres => &self.sql_postgres,
            Engine::Mysql => &self.sql_mysql,
        };
        specific.as_deref().unwrap_or(&self.sql)
    }
}

/// Every `*.yaml` in `dir`, sorted by file name. A file that does not parse fails the test: a
/// story silently skipped is a story silently untested.
pub fn load_all(dir: &Path) -> Vec<Scenario> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenario files in {}", dir.display());
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let mut s: Scenario =
                serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("scenario {} does not parse: {e}", f.display()));
            s.file = f;
            s
        })
        .collect()
}

/// A scalar as text, the way the company's tool compares (`str(v).strip()`, booleans as 0/1).
pub fn norm(v: &str) -> String {
    let s = v.trim();
    match s.to_ascii_lowercase().as_str() {
        "t" | "true" => "1".into(),
        "f" | "false" => "0".into(),
        _ => s.to_string(),
    }
}

pub fn yaml_text(v: &Yaml) -> String {
    match v {
        Yaml::Null => "NULL".into(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Number(n) => n.to_string(),
        Yaml::String(s) => s.clone(),
        other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
    }
}

pub fn json_text(v: &Json) -> String {
    match v {
        Json::Null => "NULL".into(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Kinds of DESIGN.md's contract, plus the check constraints the product also reports.
pub const KINDS: &[&str] = &[
    "table_added",
    "table_dropped",
    "table_renamed",
    "table_split",
    "table_merged",
    "column_added",
    "column_dropped",
    "column_renamed",
    "column_type_changed",
    "column_nullability_changed",
    "column_default_changed",
    "primary_key_changed",
    "unique_added",
    "unique_dropped",
    "index_added",
    "index_dropped",
    "foreign_key_added",
    "foreign_key_dropped",
    "check_added",
    "check_dropped",
    "index_renamed",
    "constraint_renamed",
];

/// Findings a story may leave unlisted: indexes and constraints its listed changes imply.
const IMPLIED: &[&str] = &[
    "primary_key_changed",
    "unique_added",
    "unique_dropped",
    "index_added",
    "index_dropped",
    "foreign_key_added",
    "foreign_key_dropped",
    "check_added",
    "check_dropped",
    "index_renamed",
    "constraint_renamed",
];

/// Checks of the JSON contract (DESIGN.md "Outputs and the machine-readable contract").
pub fn contract_problems(r: &Json) -> Vec<String> {
    let mut p = Vec::new();
    match r.get("verdict").and_then(Json::as_str) {
        Some("auto" | "lossy" | "human") => {}
        other => p.push(format!("contract: verdict is {other:?}, not auto/lossy/human")),
    }
    match r.get("findings").and_then(Json::as_array) {
        None => p.push("contract: findings is not a list".into()),
        Some(fs) => {
            for f in fs {
                let kind = f.get("kind").and_then(Json::as_str).unwrap_or("");
                if !KINDS.contains(&kind) {
                    p.push(format!("contract: finding kind {kind:?} is not a documented kind"));
                }
                if !f.get("table").is_some_and(Json::is_string) {
                    p.push(format!("contract: {kind} finding has no table"));
                }
                if !matches!(f.get("verdict").and_then(Json::as_str), Some("auto" | "lossy" | "human")) {
                    p.push(format!("contract: {kind} finding has verdict {:?}", f.get("verdict")));
                }
                if !f.get("evidence").is_some_and(Json::is_object) {
                    p.push(format!("contract: {kind} finding has no evidence object"));
                }
                if f.get("message").and_then(Json::as_str).is_none_or(|m| m.is_empty()) {
                    p.push(format!("contract: {kind} finding has no message"));
                }
                if let Some(ev) = f.get("evidence").and_then(Json::as_object) {
                    for (k, v) in ev {
                        let ok = match k.as_str() {
                            "samples" => v.as_array().is_some_and(|a| a.iter().all(Json::is_string)),
                            "probe_sql" | "unprobed" => v.is_string(),
                            _ => v.is_i64() || v.is_u64(),
                        };
                        if !ok {
                            p.push(format!("contract: {kind} evidence {k} = {v} has the wrong type"));
                        }
                    }
                }
            }
        }
    }
    if !r.get("script").is_some_and(Json::is_string) {
        p.push("contract: script is not a path".into());
    }
    if !r.get("todo_count").is_some_and(|v| v.is_u64()) {
        p.push("contract: todo_count is not a whole number".into());
    }
    match r.get("rehearsal") {
        Some(reh) if reh.is_object() => {
            if !matches!(reh.get("status").and_then(Json::as_str), Some("passed" | "failed" | "not_run")) {
                p.push(format!("contract: rehearsal.status is {:?}", reh.get("status")));
            }
            if !reh.get("verified").is_some_and(Json::is_boolean) {
                p.push("contract: rehearsal.verified is not a boolean".into());
            }
            for k in ["rows_before", "rows_after"] {
                if !reh.get(k).is_some_and(Json::is_object) {
                    p.push(format!("contract: rehearsal.{k} is not an object"));
                }
            }
        }
        _ => p.push("contract: rehearsal is not an object".into()),
    }
    p
}

/// One run of a story (variant 0 is the story itself).
pub struct Case<'a> {
    pub scenario: &'a Scenario,
    pub variant: usize,
}

impl Case<'_> {
    pub fn label(&self, engine: Engine) -> String {
        let v = if self.variant > 0 { format!("[v{}]", self.variant) } else { String::new() };
        format!("{}[{}]{v}", self.scenario.name, engine.name())
    }

    fn variant(&self) -> Option<&Variant> {
        self.variant.checked_sub(1).map(|i| &self.scenario.variants[i])
    }

    fn expect(&self) -> &Expect {
        self.variant().map(|v| &v.expect).unwrap_or(&self.scenario.expect)
    }

    pub fn hints(&self) -> Option<&Yaml> {
        self.variant().and_then(|v| v.hints.as_ref()).or(self.scenario.hints.as_ref())
    }

    pub fn sql(&self, key: &str, engine: Engine) -> Option<String> {
        self.variant().and_then(|v| v.pick(key, engine)).or_else(|| self.scenario.pick(key, engine)).cloned()
    }
}

/// Expected findings matched against the report: (problems, indexes of findings used).
fn finding_problems(want: &[ExpectedFinding], got: &[Json]) -> (Vec<String>, Vec<usize>) {
    let mut problems = Vec::new();
    let mut used = Vec::new();
    for w in want {
        let table = yaml_text(&w.table);
        let column = w.column.as_ref().map(yaml_text);
        let label = format!("{} {}{}", w.kind, table, column.as_ref().map(|c| format!(".{c}")).unwrap_or_default());
        let candidates: Vec<(usize, &Json)> = got
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                f.get("kind").and_then(Json::as_str) == Some(w.kind.as_str())
                    && f.get("table").map(json_text).as_deref() == Some(table.as_str())
                    && column.as_ref().is_none_or(|c| f.get("column").map(json_text).as_deref() == Some(c.as_str()))
            })
            .collect();
        if candidates.is_empty() {
            let seen: Vec<String> = got
                .iter()
                .map(|f| {
                    format!(
                        "{} {}{}",
                        f.get("kind").map(json_text).unwrap_or_default(),
                        f.get("table").map(json_text).unwrap_or_default(),
                        f.get("column").map(|c| format!(".{}", json_text(c))).unwrap_or_default()
                    )
                })
                .collect();
            problems.push(format!("missing finding {label} (report has: {})", seen.join(", ")));
            continue;
        }
        // The first candidate that satisfies everything; else report against the first.
        let judge = |f: &Json| -> Vec<String> {
            let mut p = Vec::new();
            let verdict = f.get("verdict").map(json_text).unwrap_or_default();
            if verdict != w.verdict {
                p.push(format!("{label}: verdict {verdict} != {}", w.verdict));
            }
            for (k, v) in &w.evidence {
                let want = norm(&yaml_text(v));
                match f.get("evidence").and_then(|e| e.get(k)) {
                    Some(g) if !g.is_null() && norm(&json_text(g)) == want => {}
                    g => p.push(format!(
                        "{label}: evidence {k} = {} != {want}",
                        g.map(json_text).unwrap_or("absent".into())
                    )),
                }
            }
            p
        };
        match candidates.iter().find(|(_, f)| judge(f).is_empty()) {
            Some((i, _)) => used.push(*i),
            None => {
                used.push(candidates[0].0);
                problems.extend(judge(candidates[0].1));
            }
        }
    }
    (problems, used)
}

/// The story's script and text report as they were reviewed (`tests/snapshots/`, one file per
/// story, variant and engine), with what differs from run to run (temporary paths, database
/// names, times, the version) masked. A difference is a problem of the case; `cargo insta review`
/// (or `INSTA_UPDATE=always` on a test run) accepts a change that is meant.
fn snapshot_problems(engine: Engine, case: &Case, live: &LiveDb, dir: &Path) -> Vec<String> {
    let workdir = dir.join("work");
    let script = std::fs::read_to_string(workdir.join("migration.sql")).unwrap_or_else(|e| format!("(no script: {e})"));
    let shown = super::rehearse(
        [
            OsStr::new("report"),
            OsStr::new("--workdir"),
            workdir.as_os_str(),
            OsStr::new("--format"),
            OsStr::new("text"),
        ],
        dir,
    );
    let body = format!("== migration.sql\n{script}\n== report (text)\n{}", shown.stdout);
    let name = format!("{}__{}__v{}", engine.name(), case.scenario.name, case.variant);
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.add_filter(&regex::escape(&dir.display().to_string()), "[DIR]");
    settings.add_filter(&regex::escape(&live.name), "[LIVE]");
    settings.add_filter(&regex::escape(env!("CARGO_PKG_VERSION")), "[VERSION]");
    settings.add_filter(r"\b\d+(\.\d+)? ?(ms|s)\b", "[TIME]");
    // The slowest statements, listed by measured time: their order is the clock's.
    settings.add_filter(r"(?m)^ *\[TIME\]  line \d+: .*\n", "");
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:?\d\d:?\d\d(\.\d+)?Z", "[STAMP]");
    let check = std::panic::AssertUnwindSafe(|| settings.bind(|| insta::assert_snapshot!(name.as_str(), body)));
    match std::panic::catch_unwind(check) {
        Ok(()) => vec![],
        Err(_) => vec![format!(
            "the script or report differs from tests/snapshots/{name}.snap: `cargo insta review`, or INSTA_UPDATE=always, accepts a meant change"
        )],
    }
}

/// Run one story on one engine: every problem found, empty when it passes.
pub fn run_case(engine: Engine, server: Option<&Server>, case: &Case) -> Vec<String> {
    let expect = case.expect();
    let (Some(live_sql), Some(target_sql)) = (case.sql("live", engine), case.sql("target", engine)) else {
        return vec!["scenario has no live or no target SQL for this engine".into()];
    };
    let tmp = Temp::new("rehearse-sc-");
    let live = match LiveDb::create(engine, server, tmp.path()) {
        Ok(l) => l,
        Err(e) => return vec![format!("harness: cannot create the live database: {e}")],
    };
    if let Err(e) = live.load(&live_sql) {
        return vec![format!("harness: the scenario's live SQL does not load: {e}")];
    }
    let repo = tmp.path().join("app");
    let hints_yaml = case.hints().map(|h| serde_yaml::to_string(h).expect("hints serialize"));
    if let Err(e) = make_app_repo(&repo, &target_sql, hints_yaml.as_deref()) {
        return vec![format!("harness: {e}")];
    }
    let workdir = tmp.path().join("work");
    let cfg = super::app_config(&live.url, tmp.path(), hints_yaml.is_some());
    let cfg_path = tmp.path().join("upgrade.yaml");
    write_yaml(&cfg_path, &cfg);

    let before = match live.fingerprint() {
        Ok(f) => f,
        Err(e) => return vec![format!("harness: cannot fingerprint live: {e}")],
    };
    let out = rehearse(
        [OsStr::new("run"), OsStr::new("--config"), cfg_path.as_os_str(), OsStr::new("--format"), OsStr::new("json")],
        tmp.path(),
    );
    let mut problems = Vec::new();
    match live.fingerprint() {
        Ok(after) => {
            if let Some(what) = after.changed_from(&before) {
                problems.push(format!("LIVE DATABASE CHANGED by a rehearsal: {what}"));
            }
        }
        Err(e) => problems.push(format!("cannot fingerprint live after the run: {e}")),
    }
    if out.timed_out {
        problems.push(format!("timed out after {:?}", super::timeout()));
    }
    if out.panicked() {
        problems.push(format!("panic: {}", super::tail(&out.stderr, 300)));
    }
    let report = match out.json() {
        Ok(r) => r,
        Err(e) => {
            problems.push(format!("no JSON report: {e}"));
            return problems;
        }
    };
    problems.extend(contract_problems(&report));

    let verdict = report.get("verdict").map(json_text).unwrap_or_default();
    if verdict != expect.verdict {
        problems.push(format!("verdict {verdict} != {}", expect.verdict));
    }
    let findings: Vec<Json> = report.get("findings").and_then(Json::as_array).cloned().unwrap_or_default();
    // The overall verdict is the worst finding's.
    let rank = |v: &str| ["auto", "lossy", "human"].iter().position(|x| *x == v);
    let worst = findings.iter().filter_map(|f| f.get("verdict").and_then(Json::as_str)).max_by_key(|v| rank(v));
    if findings.is_empty() && verdict != "auto" || worst.is_some_and(|w| w != verdict) {
        problems.push(format!("overall verdict {verdict} is not the worst finding's ({worst:?})"));
    }
    if let Some(want) = &expect.findings {
        let (p, used) = finding_problems(want, &findings);
        problems.extend(p);
        for (i, f) in findings.iter().enumerate() {
            let kind = f.get("kind").and_then(Json::as_str).unwrap_or("");
            if !used.contains(&i) && !IMPLIED.contains(&kind) {
                problems.push(format!(
                    "unexpected finding {kind} {}{} ({}): the story does not list it",
                    f.get("table").map(json_text).unwrap_or_default(),
                    f.get("column").map(|c| format!(".{}", json_text(c))).unwrap_or_default(),
                    f.get("verdict").map(json_text).unwrap_or_default()
                ));
            }
        }
    }

    let status = report.pointer("/rehearsal/status").map(json_text).unwrap_or_default();
    if status != expect.rehearsal {
        let why = report
            .pointer("/rehearsal/error")
            .or(report.pointer("/rehearsal/reason"))
            .map(json_text)
            .unwrap_or_default();
        problems.push(format!("rehearsal {status} != {} ({})", expect.rehearsal, super::head(&why, 300)));
    }
    let want_code = match status.as_str() {
        "passed" => Some(0),
        "not_run" => Some(3),
        "failed" => Some(4),
        _ => None,
    };
    if want_code.is_some() && out.code != want_code {
        problems.push(format!("exit code {:?} does not match rehearsal {status} (want {want_code:?})", out.code));
    }
    if status == "passed" && report.pointer("/rehearsal/verified") != Some(&Json::Bool(true)) {
        problems.push("rehearsal passed but verified is not true".into());
    }

    // The script on disk carries exactly todo_count markers, and a human finding leaves one.
    let todo_count = report.get("todo_count").and_then(Json::as_u64).unwrap_or(0);
    match report.get("script").and_then(Json::as_str).map(std::fs::read_to_string) {
        Some(Ok(text)) => {
            let markers = text.lines().filter(|l| l.trim_start().starts_with("-- TODO(rehearse):")).count() as u64;
            if markers != todo_count {
                problems.push(format!("script has {markers} TODO(rehearse) markers, report says {todo_count}"));
            }
            for want in &expect.script_has {
                if !text.contains(want.as_str()) {
                    problems.push(format!("the script does not contain {want:?}"));
                }
            }
            for unwanted in &expect.script_lacks {
                if text.contains(unwanted.as_str()) {
                    problems.push(format!("the script contains {unwanted:?}"));
                }
            }
        }
        Some(Err(e)) => problems.push(format!("script {:?} cannot be read: {e}", report.get("script"))),
        None => {}
    }
    problems.extend(snapshot_problems(engine, case, &live, tmp.path()));
    if findings.iter().any(|f| f.get("verdict").and_then(Json::as_str) == Some("human")) && todo_count == 0 {
        problems.push("a finding needs a human but the script has no TODO(rehearse) section".into());
    }
    if status == "passed" && todo_count > 0 {
        problems.push("a script with TODO markers was run".into());
    }

    // report.json in the workdir is the same report.
    match std::fs::read_to_string(workdir.join("report.json")).map(|t| serde_json::from_str::<Json>(&t)) {
        Ok(Ok(saved)) => {
            if saved.get("verdict") != report.get("verdict") || saved.get("findings") != report.get("findings") {
                problems.push("workdir/report.json differs from the JSON on stdout".into());
            }
        }
        _ => problems.push("workdir/report.json is missing or not JSON".into()),
    }

    match (engine, &live.server) {
        (Engine::Sqlite, _) if !live.sqlite_test_copy(&workdir).exists() => {
            problems.push(format!("no SQLite test copy at {}", live.sqlite_test_copy(&workdir).display()))
        }
        (_, Some(srv)) if srv.query(&live.test_copy_name(), "SELECT 1").is_err() => {
            problems.push(format!("no test copy database {}", live.test_copy_name()))
        }
        _ => {}
    }
    if expect.rehearsal == "passed" && status == "passed" {
        for q in &expect.after {
            let sql = q.sql_for(engine);
            match live.query_test_copy(&workdir, sql) {
                Ok(rows) => {
                    let got: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|v| norm(v)).collect()).collect();
                    let want: Vec<Vec<String>> =
                        q.rows.iter().map(|r| r.iter().map(|v| norm(&yaml_text(v))).collect()).collect();
                    if got != want {
                        problems.push(format!("after {sql:?}: got {got:?}, want {want:?}"));
                    }
                }
                Err(e) => problems.push(format!("after-query failed: {}", super::head(&e, 300))),
            }
        }
    }
    if let Some(edit) = &expect.edit {
        problems.extend(run_edit(engine, &live, &workdir, tmp.path(), &cfg, edit, &before));
    }
    if !problems.is_empty() && super::keep_temp() {
        problems.push(format!("(kept in {})", tmp.path().display()));
    }
    problems
}

/// A report's text without HTML tags and with its entities read (plain text is left as it is).
fn html_text(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The second run of a story with `expect.edit`: the generated script with one draft decided.
fn run_edit(
    engine: Engine,
    live: &LiveDb,
    workdir: &Path,
    dir: &Path,
    cfg: &Json,
    edit: &Edit,
    live_before: &super::db::Fingerprint,
) -> Vec<String> {
    let mut problems = Vec::new();
    let script = match std::fs::read_to_string(workdir.join("migration.sql")) {
        Ok(s) => s,
        Err(e) => return vec![format!("edit: no generated script: {e}")],
    };
    let Some(edited) = uncomment(&script, edit) else {
        return vec![format!("edit: the script has no draft {:?} / statement {:?}", edit.draft, edit.statement)];
    };
    let edited_path = dir.join("edited.sql");
    std::fs::write(&edited_path, &edited).expect("write the edited script");
    let mut cfg = cfg.clone();
    if let Some(h) = &edit.sysadmin_hints {
        let p = dir.join("sysadmin-hints.yaml");
        std::fs::write(&p, serde_yaml::to_string(h).expect("hints serialize")).expect("write the sysadmin hints");
        cfg["sysadmin_hints"] = p.to_str().expect("utf-8 path").into();
    }
    let cfg_path = dir.join("upgrade-edited.yaml");
    write_yaml(&cfg_path, &cfg);
    let out = rehearse(
        [
            OsStr::new("run"),
            OsStr::new("--config"),
            cfg_path.as_os_str(),
            OsStr::new("--script"),
            edited_path.as_os_str(),
            OsStr::new("--format"),
            OsStr::new("json"),
        ],
        dir,
    );
    let report = match out.json() {
        Ok(r) => r,
        Err(e) => return vec![format!("edit: no JSON report: {e}")],
    };
    let status = report.pointer("/rehearsal/status").map(json_text).unwrap_or_default();
    if status != edit.rehearsal {
        let why = report
            .pointer("/rehearsal/error")
            .or(report.pointer("/rehearsal/reason"))
            .map(json_text)
            .unwrap_or_default();
        problems.push(format!("edit: rehearsal {status} != {} ({})", edit.rehearsal, super::head(&why, 400)));
    }
    if status == "passed" {
        for q in &edit.after {
            let sql = q.sql_for(engine);
            match live.query_test_copy(workdir, sql) {
                Ok(rows) => {
                    let got: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|v| norm(v)).collect()).collect();
                    let want: Vec<Vec<String>> =
                        q.rows.iter().map(|r| r.iter().map(|v| norm(&yaml_text(v))).collect()).collect();
                    if got != want {
                        problems.push(format!("edit: after {sql:?}: got {got:?}, want {want:?}"));
                    }
                }
                Err(e) => problems.push(format!("edit: after-query failed: {}", super::head(&e, 300))),
            }
        }
    }
    // Every format of the saved report says it (the HTML one with its markup, so its text).
    for format in ["text", "md", "html"] {
        if edit.report_says.is_empty() {
            break;
        }
        let shown = rehearse(
            [
                OsStr::new("report"),
                OsStr::new("--workdir"),
                workdir.as_os_str(),
                OsStr::new("--format"),
                OsStr::new(format),
            ],
            dir,
        );
        let text = html_text(&shown.stdout);
        for want in &edit.report_says {
            if !text.contains(want.as_str()) {
                problems
                    .push(format!("edit: the {format} report does not say {want:?}:\n{}", super::head(&text, 3000)));
            }
        }
    }
    match live.fingerprint() {
        Ok(after) => {
            if let Some(what) = after.changed_from(live_before) {
                problems.push(format!("LIVE DATABASE CHANGED by the edited rehearsal: {what}"));
            }
        }
        Err(e) => problems.push(format!("cannot fingerprint live after the edited run: {e}")),
    }
    problems
}

/// Whether a case is skipped on `engine`, and why.
pub fn skip_reason(
    engine: Engine,
    s: &Scenario,
    engine_pending: &[&str],
    known_bugs: &[(&str, &str)],
) -> Option<String> {
    if s.pending.iter().any(|e| e == engine.name()) {
        return Some(format!("pending on {} (scenario file)", engine.name()));
    }
    if engine_pending.contains(&s.name.as_str()) {
        return Some(format!("pending: the {} engine is not finished", engine.name()));
    }
    known_bugs.iter().find(|(n, _)| *n == s.name).map(|(_, why)| format!("known bug: {why}"))
}

/// Run the cases in parallel (REHEARSE_TEST_JOBS, default: the machine's parallelism).
pub fn run_cases(engine: Engine, server: Option<&Server>, cases: &[Case]) -> Vec<(String, Vec<String>)> {
    let jobs = std::env::var("REHEARSE_TEST_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2))
        .clamp(1, 16);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.min(cases.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                let p = run_case(engine, server, case);
                results.lock().unwrap().push((i, case.label(engine), p));
            });
        }
    });
    let mut r = results.into_inner().unwrap();
    r.sort_by_key(|(i, _, _)| *i);
    r.into_iter().map(|(_, l, p)| (l, p)).collect()
}

/// The body of a `scenarios_<engine>` test: every story naming `engine` (all its variants), except
/// pending ones and known bugs; every failure in one assertion message.
pub fn run_suite(engine: Engine, engine_pending: &[&str], known_bugs: &[(&str, &str)]) {
    let server = match engine {
        Engine::Sqlite => None,
        _ => match super::db::server_for(engine) {
            Some(s) => Some(s),
            None => return,
        },
    };
    let scenarios = load_all(&super::scenarios_dir());
    let filter = std::env::var("REHEARSE_SCENARIO").ok().filter(|f| !f.is_empty());
    let run_pending = std::env::var("REHEARSE_RUN_PENDING").is_ok_and(|v| v == "1");
    let mut cases = Vec::new();
    let mut pending_cases = Vec::new();
    let mut notes = Vec::new();
    for s in &scenarios {
        if !s.engines.iter().any(|e| e == engine.name()) {
            continue;
        }
        if filter.as_ref().is_some_and(|f| !s.name.contains(f.as_str())) {
            continue;
        }
        let all = (0..=s.variants.len()).map(|variant| Case { scenario: s, variant });
        match skip_reason(engine, s, engine_pending, known_bugs) {
            Some(why) => {
                notes.push(format!("SKIP {}[{}]: {why}", s.name, engine.name()));
                if run_pending {
                    pending_cases.extend(all);
                }
            }
            None => cases.extend(all),
        }
    }
    let started = std::time::Instant::now();
    let results = run_cases(engine, server.as_ref(), &cases);
    let mut lines = Vec::new();
    let mut failures = Vec::new();
    for (label, problems) in &results {
        if problems.is_empty() {
            lines.push(format!("PASS {label}"));
        } else {
            let line = format!("FAIL {label}: {}", problems.join("; "));
            lines.push(line.clone());
            failures.push(line);
        }
    }
    for (label, problems) in run_cases(engine, server.as_ref(), &pending_cases) {
        if problems.is_empty() {
            notes.push(format!("PENDING BUT PASSES {label}: remove it from the pending list"));
        } else {
            notes.push(format!("pending, still failing {label}: {}", problems.join("; ")));
        }
    }
    lines.extend(notes);
    lines.push(format!(
        "{} passed, {} failed on {} in {:.1}s",
        results.len() - failures.len(),
        failures.len(),
        engine.name(),
        started.elapsed().as_secs_f64()
    ));
    println!("{}", lines.join("\n"));
    // While an engine is being written every story may be pending for it; otherwise a run that
    // tested nothing is a broken suite, not a green one.
    if filter.is_none() && engine_pending.is_empty() {
        assert!(!cases.is_empty(), "no scenario ran on {}", engine.name());
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenario runs failed on {}:\n{}",
        failures.len(),
        results.len(),
        engine.name(),
        failures.join("\n")
    );
}

/// Run the named stories only (all their variants), ignoring pending lists: for the `#[ignore]`d
/// tests that pin a known bug.
pub fn run_named(engine: Engine, names: &[&str]) {
    let server = match engine {
        Engine::Sqlite => None,
        _ => match super::db::server_for(engine) {
            Some(s) => Some(s),
            None => return,
        },
    };
    let scenarios = load_all(&super::scenarios_dir());
    let mut cases = Vec::new();
    for n in names {
        let s = scenarios.iter().find(|s| s.name == *n).unwrap_or_else(|| panic!("no scenario named {n}"));
        cases.extend((0..=s.variants.len()).map(|variant| Case { scenario: s, variant }));
    }
    let failures: Vec<String> = run_cases(engine, server.as_ref(), &cases)
        .into_iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(l, p)| format!("FAIL {l}: {}", p.join("; ")))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The judge judged: a harness whose fingerprint never changes, or whose queries mangle quotes and
/// non-ASCII text, would let every "live unchanged" and "after" check pass vacuously. Loads the
/// quotes-and-unicode story's live data, reads it back, and proves one written row changes the
/// fingerprint while a second fingerprint of the untouched database does not.
pub fn harness_self_check(engine: Engine) {
    let server = match engine {
        Engine::Sqlite => None,
        _ => match super::db::server_for(engine) {
            Some(s) => Some(s),
            None => return,
        },
    };
    let scenarios = load_all(&super::scenarios_dir());
    let s = scenarios.iter().find(|s| s.name == "quotes-and-unicode").expect("the quotes-and-unicode story");
    let tmp = Temp::new("rehearse-self-");
    let live = LiveDb::create(engine, server.as_ref(), tmp.path()).expect("create a live database");
    live.load(s.pick("live", engine).expect("live SQL")).expect("load the live SQL");
    let (table, column) = match engine {
        Engine::Mysql => ("`we\"ird`", "`na\"me`"),
        _ => ("\"we\"\"ird\"", "\"na\"\"me\""),
    };
    let read = |sql: &str| -> Vec<Vec<String>> {
        match (&live.path, &live.server) {
            (Some(p), _) => super::db::sqlite_query(p, sql).unwrap(),
            (None, Some(srv)) => srv.query(&live.name, sql).unwrap(),
            _ => unreachable!(),
        }
    };
    let rows = read(&format!("SELECT {column}, kind FROM {table} ORDER BY id"));
    assert_eq!(
        rows,
        [["O'Brien", "it's"], ["say \"hi\"", "back\\slash"], ["Zoë 🦀", "it's"]],
        "values do not come back exactly from {}",
        engine.name()
    );
    assert_eq!(read(&format!("SELECT {column} FROM {table} WHERE id = 99")), Vec::<Vec<String>>::new());
    assert_eq!(read("SELECT NULL"), [["NULL"]]);

    let first = live.fingerprint().unwrap();
    assert_eq!(live.fingerprint().unwrap().changed_from(&first), None, "fingerprint is not stable");
    live.load(&format!("UPDATE {table} SET kind = 'x' WHERE id = 3")).unwrap();
    assert!(live.fingerprint().unwrap().changed_from(&first).is_some(), "fingerprint misses a changed row");
}

/// Every story's `live` and `target` SQL (all variants, pending stories included) loads into an
/// empty database of `engine`: a story that cannot even load is a broken story, not an engine bug,
/// and this says so before the engine is blamed.
pub fn sql_loads(engine: Engine) {
    let server = match engine {
        Engine::Sqlite => None,
        _ => match super::db::server_for(engine) {
            Some(s) => Some(s),
            None => return,
        },
    };
    // PostgreSQL rolls DDL back: one database, each text inside BEGIN ... ROLLBACK (a database
    // per text costs half a second each there).
    let tmp = Temp::new("rehearse-sql-");
    let shared = match engine {
        Engine::Postgres => Some(LiveDb::create(engine, server.as_ref(), tmp.path()).expect("a scratch database")),
        _ => None,
    };
    let mut problems = Vec::new();
    for s in load_all(&super::scenarios_dir()) {
        if !s.engines.iter().any(|e| e == engine.name()) {
            continue;
        }
        for variant in 0..=s.variants.len() {
            let case = Case { scenario: &s, variant };
            for key in ["live", "target"] {
                let Some(sql) = case.sql(key, engine) else {
                    problems.push(format!("{}: no {key} SQL", case.label(engine)));
                    continue;
                };
                let loaded = match &shared {
                    Some(db) => db.load(&format!("BEGIN;\n{sql}\n;\nROLLBACK;\n")),
                    None => {
                        let dir = Temp::new("rehearse-sql-");
                        LiveDb::create(engine, server.as_ref(), dir.path()).and_then(|db| db.load(&sql))
                    }
                };
                if let Err(e) = loaded {
                    problems.push(format!("{}: {key} SQL does not load: {e}", case.label(engine)));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A live database for a server engine loaded with the add-nullable-column story, its app repo
/// and config: for the guard tests below. None when the server is not configured (skipped).
fn server_story(engine: Engine, tmp: &Temp, live_url: Option<&dyn Fn(&LiveDb) -> String>) -> Option<(LiveDb, PathBuf)> {
    let server = super::db::server_for(engine)?;
    let scenarios = load_all(&super::scenarios_dir());
    let s = scenarios.iter().find(|s| s.name == "add-nullable-column").expect("the add-nullable-column story");
    let live = LiveDb::create(engine, Some(&server), tmp.path()).expect("create live");
    live.load(s.pick("live", engine).unwrap()).expect("load live");
    let repo = tmp.path().join("app");
    make_app_repo(&repo, s.pick("target", engine).unwrap(), None).expect("app repo");
    let url = live_url.map(|f| f(&live)).unwrap_or_else(|| live.url.clone());
    let cfg = serde_json::json!({
        "live": { "url": url },
        "app": { "repo": repo, "revision": "v2" },
        "schema": { "sql": "db/schema.sql" },
        "workdir": tmp.path().join("work"),
    });
    let cfg_path = tmp.path().join("upgrade.yaml");
    write_yaml(&cfg_path, &cfg);
    Some((live, cfg_path))
}

fn run_config(cfg: &Path, cwd: &Path) -> super::Output {
    rehearse(
        [OsStr::new("run"), OsStr::new("--config"), cfg.as_os_str(), OsStr::new("--format"), OsStr::new("json")],
        cwd,
    )
}

/// DESIGN.md: a database rehearse did not create is never dropped. A `<live>upgradetest` that was
/// already there (someone's own database) must be refused with exit 5 and left as it was.
pub fn foreign_test_copy_is_refused(engine: Engine) {
    let tmp = Temp::new("rehearse-guard-");
    let Some((live, cfg)) = server_story(engine, &tmp, None) else { return };
    let srv = live.server.clone().unwrap();
    let theirs = live.test_copy_name();
    srv.create_database(&theirs).unwrap();
    srv.execute(Some(&theirs), "CREATE TABLE precious (id INTEGER PRIMARY KEY); INSERT INTO precious VALUES (42);")
        .unwrap();
    let theirs_before = srv.dump(&theirs).unwrap();
    let live_before = live.fingerprint().unwrap();
    let out = run_config(&cfg, tmp.path());
    assert!(!out.panicked(), "{}", out.describe());
    assert_eq!(out.code, Some(5), "a test copy rehearse did not make must be refused\n{}", out.describe());
    assert!(out.stderr.contains(&theirs), "the refusal names the database: {}", out.stderr);
    assert_eq!(srv.dump(&theirs).unwrap(), theirs_before, "the database rehearse did not make was changed");
    assert_eq!(live.fingerprint().unwrap().changed_from(&live_before), None, "live changed");
}

/// Safety invariant 5: a password in live.url never appears in stdout, stderr or any file in the
/// workdir. (The test server trusts loopback, so any password logs in.)
pub fn password_is_never_shown(engine: Engine) {
    const SECRET: &str = "s3cr3t-Pa55word";
    let tmp = Temp::new("rehearse-secret-");
    let with_password = |l: &LiveDb| {
        let s = l.server.clone().unwrap();
        super::db::Server { password: Some(SECRET.into()), ..s }.url_of(&l.name)
    };
    let Some((_live, cfg)) = server_story(engine, &tmp, Some(&with_password)) else { return };
    let out = run_config(&cfg, tmp.path());
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(!out.stdout.contains(SECRET) && !out.stderr.contains(SECRET), "the password is shown\n{}", out.describe());
    let mut stack = vec![tmp.path().join("work")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                let found = bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes());
                assert!(!found, "the password is written in {}", p.display());
            }
        }
    }
}
