//! Offline upgrade bundles for SQLite clients (docs/bundles.md): one file that carries a passed
//! rehearsal — the verified script, the rehearsal record, the hints, the verification figures and
//! optionally the new code tree — to a machine with no one on site, where `rehearse apply`
//! (`bundle::apply`) upgrades the database and the code folder together.
//!
//! The file is a plain tar archive (`tar tf` lists it), sealed: its last member
//! `rehearse-bundle.sha256` holds the SHA-256 and the length of every byte before it, and only
//! tar's two end blocks follow it. A bundle that differs from what was sealed by one byte, or by
//! its length, is refused before any part of it is used (exit 6). This module only reads the
//! workdir and the code, and never writes to a database.

pub mod apply;

use crate::config::Resolved;
use crate::exit::{BundleDamaged, Refused, UsageError};
use crate::hints::Hints;
use crate::record::{self, Record};
use crate::schema::sha256_hex;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};

pub const FORMAT: &str = "rehearse-bundle";
/// Bumped when a reader of an older version could misread a bundle.
pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
pub const RECORD: &str = "record.json";
pub const SCRIPT: &str = "rehearsed.sql";
pub const HINTS: &str = "hints.yaml";
pub const VERIFICATION: &str = "verification.json";
/// The new code tree lives under this folder of the archive.
pub const CODE: &str = "code";
pub const SEAL: &str = "rehearse-bundle.sha256";
const BLOCK: usize = 512;
/// The seal's header block, its data block, and tar's two end-of-archive blocks.
const SEAL_LEN: usize = 4 * BLOCK;

/// The first member: what the bundle is, for a person (`tar xOf B manifest.json`) and for `apply`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub created_at: String,
    pub created_by: String,
    pub engine: String,
    /// The schema fingerprint a client's database must have.
    pub from_fingerprint: String,
    /// The schema fingerprint it has after the upgrade.
    pub to_fingerprint: String,
    pub script_sha256: String,
    #[serde(default)]
    pub commit: Option<String>,
    #[serde(default)]
    pub code: Option<CodeSummary>,
    /// Every member but the code tree and the seal, with its size and SHA-256.
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CodeSummary {
    /// `folder /path` or `git archive <commit> of /repo`.
    pub source: String,
    pub files: usize,
    pub folders: usize,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Member {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// Where the new code comes from.
#[derive(Debug, Clone)]
pub enum CodeSource {
    None,
    /// A folder as it is (a `.git` folder in it is left out).
    Folder(PathBuf),
    /// `git archive` of the commit in the rehearsal record, from `app.repo`.
    Revision,
}

pub struct Options {
    pub cfg: Resolved,
    pub out: Option<PathBuf>,
    pub code: CodeSource,
}

/// What `rehearse bundle` wrote.
#[derive(Debug, Serialize)]
pub struct Built {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    pub manifest: Manifest,
}

/// One file or folder of the code tree, by its path inside the tree (`/`-separated).
struct CodeItem {
    path: String,
    mode: u32,
    mtime: u64,
    data: CodeData,
}

enum CodeData {
    Folder,
    File(PathBuf, u64),
    Bytes(Vec<u8>),
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

fn short(fp: &str) -> &str {
    fp.get(..12).unwrap_or(fp)
}

/// `rehearse bundle`: seal the last passed rehearsal of the workdir (and the new code) into one
/// file. Refuses (exit 5) without a passed, verified rehearsal whose script is unchanged, and for
/// any engine but SQLite.
pub fn build(opts: &Options) -> anyhow::Result<Built> {
    let cfg = &opts.cfg;
    let rec = record::read(&cfg.workdir)?.ok_or_else(|| {
        Refused(format!(
            "no passed rehearsal in {}: rehearse first (rehearse run --config ...), then bundle",
            cfg.workdir.display()
        ))
    })?;
    if !rec.verified {
        return Err(Refused("the last rehearsal was not verified: rehearse again, then bundle".into()).into());
    }
    if let Some(to) = &rec.switched_to {
        return Err(Refused(format!(
            "the last rehearsal moved live onto {to} (test.url): an engine switch is not bundled; rehearse the clients' own database"
        ))
        .into());
    }
    let scheme = cfg.live_url.split_once(':').map(|(s, _)| s).unwrap_or("");
    if rec.engine != "sqlite" || scheme != "sqlite" {
        return Err(Refused(format!(
            "bundles are for SQLite clients, and this rehearsal is of a {} database: promote it with rehearse run --live instead",
            if rec.engine != "sqlite" { rec.engine.as_str() } else { scheme }
        ))
        .into());
    }
    // A record from before hint expressions were checked (or edited since) is not shipped.
    rec.hints
        .check_expressions(crate::engine::Dialect::Sqlite)
        .map_err(|e| Refused(format!("the rehearsal's {e:#}; rehearse again with it fixed, then bundle")))?;
    let script = fs_err::read(&rec.script)
        .with_context(|| format!("cannot read the rehearsed script {}", rec.script.display()))?;
    let script_sha = sha256_hex(&script);
    if script_sha != rec.script_sha256 {
        return Err(Refused(format!(
            "{} is not the script that was rehearsed (SHA-256 {} differs from {}): rehearse again, then bundle",
            rec.script.display(),
            short(&script_sha),
            short(&rec.script_sha256)
        ))
        .into());
    }
    // The verification figures of this very rehearsal (the report is written after the record).
    let verification = crate::report::load(&cfg.workdir)
        .ok()
        .filter(|r| r.get("script_sha256").and_then(|s| s.as_str()) == Some(rec.script_sha256.as_str()))
        .and_then(|r| r.get("rehearsal").cloned());

    let (code, source) = match &opts.code {
        CodeSource::None => (vec![], None),
        CodeSource::Folder(dir) => {
            if !dir.is_dir() {
                return Err(UsageError(format!("--code {} is not a folder", dir.display())).into());
            }
            let mut items = vec![];
            walk(dir, "", &mut items)?;
            (items, Some(format!("folder {}", dir.display())))
        }
        CodeSource::Revision => {
            let commit = rec.commit.clone().ok_or_else(|| {
                UsageError("the rehearsal checked out no revision (no app.repo in the config): use --code DIR".into())
            })?;
            let app = cfg.app.as_ref().ok_or_else(|| {
                UsageError("--code-rev needs app.repo in the config (the repository the rehearsal checked out)".into())
            })?;
            (git_archive(&app.repo, &commit)?, Some(format!("git archive {commit} of {}", app.repo.display())))
        }
    };

    let hints = serde_yaml::to_string(&rec.hints)?;
    // `apply` checks that hints.yaml reads back as the record's hints: make sure it does here.
    if Hints::parse(&hints, Path::new(HINTS))? != rec.hints {
        anyhow::bail!("the rehearsal's hints do not read back the same from YAML; please report this");
    }
    let mut data_members: Vec<(&str, Vec<u8>)> =
        vec![(RECORD, serde_json::to_vec_pretty(&rec)?), (SCRIPT, script), (HINTS, hints.into_bytes())];
    if let Some(v) = &verification {
        data_members.push((VERIFICATION, serde_json::to_vec_pretty(v)?));
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        created_at: now(),
        created_by: format!("rehearse {}", env!("CARGO_PKG_VERSION")),
        engine: rec.engine.clone(),
        from_fingerprint: rec.live_fingerprint.clone(),
        to_fingerprint: rec.target_fingerprint.clone(),
        script_sha256: rec.script_sha256.clone(),
        commit: rec.commit.clone(),
        code: source.map(|source| CodeSummary {
            source,
            files: code.iter().filter(|c| !matches!(c.data, CodeData::Folder)).count(),
            folders: code.iter().filter(|c| matches!(c.data, CodeData::Folder)).count(),
            bytes: code
                .iter()
                .map(|c| match &c.data {
                    CodeData::Folder => 0,
                    CodeData::File(_, n) => *n,
                    CodeData::Bytes(b) => b.len() as u64,
                })
                .sum(),
        }),
        members: data_members
            .iter()
            .map(|(name, bytes)| Member { name: name.to_string(), size: bytes.len() as u64, sha256: sha256_hex(bytes) })
            .collect(),
    };

    let out = opts.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!("upgrade-{}-{}.rhb", short(&rec.live_fingerprint), short(&rec.target_fingerprint)))
    });
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Written under a temporary name and renamed: a half-written bundle never has the final name.
    let mut tmp =
        tempfile::NamedTempFile::new_in(&dir).with_context(|| format!("cannot write in {}", dir.display()))?;
    {
        let mut b = tar::Builder::new(std::io::BufWriter::new(tmp.as_file_mut()));
        append_file(&mut b, MANIFEST, 0o644, 0, &serde_json::to_vec_pretty(&manifest)?[..])?;
        for (name, bytes) in &data_members {
            append_file(&mut b, name, 0o644, 0, &bytes[..])?;
        }
        for item in &code {
            let name = format!("{CODE}/{}", item.path);
            match &item.data {
                CodeData::Folder => {
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(item.mode);
                    h.set_mtime(item.mtime);
                    h.set_size(0);
                    b.append_data(&mut h, format!("{name}/"), std::io::empty())?;
                }
                CodeData::File(path, _) => {
                    let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
                    append_file(&mut b, &name, item.mode, item.mtime, f)?;
                }
                CodeData::Bytes(bytes) => append_file(&mut b, &name, item.mode, item.mtime, &bytes[..])?,
            }
        }
        // Writes tar's end blocks, which the seal replaces below.
        b.into_inner()?.flush()?;
    }
    let file = tmp.as_file_mut();
    let sealed_len = file.seek(SeekFrom::End(0))? - 2 * BLOCK as u64;
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut (&mut *file).take(sealed_len), &mut hasher)?;
    let hash = hex(&hasher.finalize());
    file.seek(SeekFrom::Start(sealed_len))?;
    file.write_all(&seal(&hash, sealed_len)?)?;
    file.sync_all()?;
    let bytes = file.seek(SeekFrom::End(0))?;
    let mut whole = Sha256::new();
    file.seek(SeekFrom::Start(0))?;
    std::io::copy(file, &mut whole)?;
    tmp.persist(&out).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(Built { path: out, bytes, sha256: hex(&whole.finalize()), manifest })
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn append_file<W: Write>(
    b: &mut tar::Builder<W>,
    name: &str,
    mode: u32,
    mtime: u64,
    data: impl Read,
) -> anyhow::Result<()> {
    // The size is known to the caller only for in-memory data; read files to learn theirs.
    let mut data = data;
    let mut bytes = Vec::new();
    data.read_to_end(&mut bytes)?;
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(mode);
    h.set_mtime(mtime);
    h.set_size(bytes.len() as u64);
    b.append_data(&mut h, name, &bytes[..]).with_context(|| format!("cannot add {name} to the bundle"))
}

/// The last 2048 bytes of a bundle: the seal member for the first `len` bytes, and tar's end.
/// Built the same way every time, so a reader compares them byte for byte.
fn seal(hash: &str, len: u64) -> anyhow::Result<Vec<u8>> {
    let text = format!("sha256 {hash} bytes {len}\n");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_size(text.len() as u64);
    let mut b = tar::Builder::new(Vec::with_capacity(SEAL_LEN));
    b.append_data(&mut h, SEAL, text.as_bytes())?;
    let out = b.into_inner()?;
    debug_assert_eq!(out.len(), SEAL_LEN);
    Ok(out)
}

/// Check the seal of a whole bundle; the length of what it covers.
fn check_seal(data: &[u8]) -> Result<usize, BundleDamaged> {
    let damaged = |why: &str| BundleDamaged(format!("the upgrade file is damaged or altered ({why})"));
    if data.len() < SEAL_LEN + BLOCK || !data.len().is_multiple_of(BLOCK) {
        return Err(damaged(&format!(
            "its length, {} bytes, is not that of a whole bundle: it may be cut short",
            data.len()
        )));
    }
    let covered = data.len() - SEAL_LEN;
    let text_block = &data[covered + BLOCK..covered + 2 * BLOCK];
    let text = std::str::from_utf8(text_block)
        .ok()
        .map(|t| t.trim_end_matches('\0'))
        .and_then(|t| t.strip_prefix("sha256 "))
        .and_then(|t| t.strip_suffix('\n'))
        .and_then(|t| t.split_once(" bytes "))
        .ok_or_else(|| damaged("its seal is missing: it may be cut short"))?;
    let (hash, len) = text;
    if len.parse::<usize>().ok() != Some(covered) {
        return Err(damaged("its length differs from the one sealed: it was cut short or extended"));
    }
    let actual = sha256_hex(&data[..covered]);
    if actual != hash {
        return Err(damaged(&format!("its SHA-256 is {} where the seal says {}", short(&actual), short(hash))));
    }
    match seal(hash, covered as u64) {
        Ok(expected) if expected[..] == data[covered..] => Ok(covered),
        _ => Err(damaged("its seal has been altered")),
    }
}

/// The files of `root/rel`, in name order; refuses links and special files (clients may run
/// Windows, and a bundle carries plain files and folders only).
fn walk(root: &Path, rel: &str, out: &mut Vec<CodeItem>) -> anyhow::Result<()> {
    let here = if rel.is_empty() { root.to_path_buf() } else { root.join(rel) };
    let mut entries = fs_err::read_dir(&here)
        .with_context(|| format!("cannot read {}", here.display()))?
        .collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().into_string().map_err(|n| {
            UsageError(format!("{} in {} is not a UTF-8 name: rename it", n.to_string_lossy(), here.display()))
        })?;
        if name == ".git" {
            continue;
        }
        check_name(&name).map_err(|why| UsageError(format!("{} in {}: {why}", name, here.display())))?;
        let path = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        let full = root.join(&path);
        let meta = fs_err::symlink_metadata(&full)?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mode = mode_of(&meta);
        if meta.file_type().is_symlink() {
            return Err(UsageError(format!(
                "{} is a symbolic link: a bundle carries plain files and folders only; replace it with a copy",
                full.display()
            ))
            .into());
        } else if meta.is_dir() {
            out.push(CodeItem { path: path.clone(), mode, mtime, data: CodeData::Folder });
            walk(root, &path, out)?;
        } else if meta.is_file() {
            out.push(CodeItem { path, mode, mtime, data: CodeData::File(full, meta.len()) });
        } else {
            return Err(UsageError(format!("{} is not a plain file or folder: leave it out", full.display())).into());
        }
    }
    Ok(())
}

fn mode_of(meta: &std::fs::Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o777
    }
    #[cfg(not(unix))]
    {
        if meta.is_dir() {
            0o755
        } else {
            0o644
        }
    }
}

/// A name that is a plain file name on every system the client may run.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name == "." || name == ".." {
        return Err("not a file name");
    }
    if name.chars().any(|c| matches!(c, '/' | '\\' | ':' | '\0')) {
        return Err("a name with / \\ : or NUL cannot be carried to every client");
    }
    Ok(())
}

/// The tree of `commit` in `repo`, through `git archive` (no shell; arguments as a list).
fn git_archive(repo: &Path, commit: &str) -> anyhow::Result<Vec<CodeItem>> {
    let bytes = crate::process::run_bytes(
        duct::cmd("git", ["-C", &repo.to_string_lossy(), "archive", "--format=tar", commit])
            .env("GIT_TERMINAL_PROMPT", "0"),
        "git archive",
    )?;
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(&bytes[..]);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader) {
            continue; // git's pax comment with the commit id
        }
        let path = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| UsageError(format!("commit {commit} has a file name that is not UTF-8")))?;
        let path = path.trim_end_matches('/').to_string();
        for part in path.split('/') {
            check_name(part).map_err(|why| UsageError(format!("{path} in commit {commit}: {why}")))?;
        }
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        let mtime = entry.header().mtime().unwrap_or(0);
        let data = match kind {
            tar::EntryType::Directory => CodeData::Folder,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut b = Vec::new();
                entry.read_to_end(&mut b)?;
                CodeData::Bytes(b)
            }
            tar::EntryType::Symlink => {
                return Err(UsageError(format!(
                    "{path} in commit {commit} is a symbolic link: a bundle carries plain files and folders only; use --code DIR with a copy"
                ))
                .into())
            }
            other => {
                return Err(UsageError(format!("{path} in commit {commit} is a {other:?} entry, not a plain file")).into())
            }
        };
        out.push(CodeItem { path, mode, mtime, data });
    }
    Ok(out)
}

/// A loaded bundle whose seal, manifest and members all agree. Holds the whole file: what was
/// checked is what is used.
pub struct Bundle {
    pub path: PathBuf,
    /// SHA-256 of the whole file.
    pub sha256: String,
    pub manifest: Manifest,
    pub record: Record,
    pub script: String,
    pub hints: Hints,
    pub verification: Option<serde_json::Value>,
    data: Vec<u8>,
    code: Vec<CodeEntry>,
}

struct CodeEntry {
    path: String,
    folder: bool,
    mode: u32,
    mtime: u64,
    start: usize,
    len: usize,
}

impl Bundle {
    /// Read and check a bundle: the seal (exit 6 when it fails), then that the manifest, the record,
    /// the script and the hints agree with each other, and that every code path stays inside the
    /// code folder.
    pub fn load(path: &Path) -> anyhow::Result<Bundle> {
        let data = match fs_err::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(UsageError(format!("there is no upgrade file {}", path.display())).into())
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot read {}", path.display()))),
        };
        let covered = check_seal(&data)?;
        let damaged = |why: String| anyhow::Error::new(BundleDamaged(format!("the upgrade file is not usable: {why}")));
        let mut members: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
        let mut code = Vec::new();
        let mut archive = tar::Archive::new(&data[..covered]);
        let entries = archive.entries().map_err(|e| damaged(e.to_string()))?;
        for entry in entries {
            let entry = entry.map_err(|e| damaged(e.to_string()))?;
            let name = String::from_utf8(entry.path_bytes().into_owned())
                .map_err(|_| damaged("a member name is not UTF-8".into()))?;
            let start = entry.raw_file_position() as usize;
            let len = entry.size() as usize;
            if start.checked_add(len).is_none_or(|end| end > covered) {
                return Err(damaged(format!("{name} runs past the end")));
            }
            let kind = entry.header().entry_type();
            if let Some(rest) = name.strip_prefix(&format!("{CODE}/")) {
                let rest = rest.trim_end_matches('/');
                if rest.is_empty() {
                    continue;
                }
                if rest.split('/').any(|p| check_name(p).is_err())
                    || Path::new(rest).components().any(|c| !matches!(c, Component::Normal(_)))
                {
                    return Err(damaged(format!("{name} would land outside the code folder")));
                }
                let folder = match kind {
                    tar::EntryType::Directory => true,
                    tar::EntryType::Regular => false,
                    other => return Err(damaged(format!("{name} is a {other:?} entry, not a plain file"))),
                };
                code.push(CodeEntry {
                    path: rest.to_string(),
                    folder,
                    mode: entry.header().mode().unwrap_or(0o644) & 0o777,
                    mtime: entry.header().mtime().unwrap_or(0),
                    start,
                    len,
                });
            } else if kind == tar::EntryType::Regular
                && [MANIFEST, RECORD, SCRIPT, HINTS, VERIFICATION].contains(&name.as_str())
            {
                if members.insert(name.clone(), (start, len)).is_some() {
                    return Err(damaged(format!("{name} appears twice")));
                }
            } else {
                return Err(damaged(format!("it holds an unexpected member {name}")));
            }
        }
        let bytes = |name: &str| -> anyhow::Result<&[u8]> {
            let (s, l) = members.get(name).ok_or_else(|| damaged(format!("{name} is missing")))?;
            Ok(&data[*s..*s + *l])
        };
        let manifest: Manifest =
            serde_json::from_slice(bytes(MANIFEST)?).map_err(|e| damaged(format!("{MANIFEST}: {e}")))?;
        if manifest.format != FORMAT {
            return Err(damaged(format!("it is not a rehearse bundle ({MANIFEST} says {:?})", manifest.format)));
        }
        if manifest.format_version > FORMAT_VERSION {
            return Err(Refused(format!(
                "the upgrade file was made by {} (bundle format {}); this rehearse {} reads format {FORMAT_VERSION}: install the newer rehearse first",
                manifest.created_by,
                manifest.format_version,
                env!("CARGO_PKG_VERSION")
            ))
            .into());
        }
        for m in &manifest.members {
            let b = bytes(&m.name)?;
            if b.len() as u64 != m.size || sha256_hex(b) != m.sha256 {
                return Err(damaged(format!("{} differs from the manifest", m.name)));
            }
        }
        if members.keys().any(|k| k != MANIFEST && !manifest.members.iter().any(|m| &m.name == k)) {
            return Err(damaged("it holds a member the manifest does not list".into()));
        }
        let record: Record = serde_json::from_slice(bytes(RECORD)?).map_err(|e| damaged(format!("{RECORD}: {e}")))?;
        let script =
            String::from_utf8(bytes(SCRIPT)?.to_vec()).map_err(|_| damaged(format!("{SCRIPT} is not text")))?;
        let hints_text =
            std::str::from_utf8(bytes(HINTS)?).map_err(|_| damaged(format!("{HINTS} is not text")))?.to_string();
        let hints = Hints::parse(&hints_text, Path::new(HINTS)).map_err(|e| damaged(format!("{e:#}")))?;
        let verification = match members.contains_key(VERIFICATION) {
            true => Some(
                serde_json::from_slice(bytes(VERIFICATION)?).map_err(|e| damaged(format!("{VERIFICATION}: {e}")))?,
            ),
            false => None,
        };
        if sha256_hex(script.as_bytes()) != record.script_sha256
            || record.script_sha256 != manifest.script_sha256
            || record.live_fingerprint != manifest.from_fingerprint
            || record.target_fingerprint != manifest.to_fingerprint
            || record.engine != manifest.engine
            || hints != record.hints
            || !record.verified
        {
            return Err(damaged("its script, record and manifest do not agree".into()));
        }
        if record.engine != "sqlite" {
            return Err(Refused(format!(
                "the upgrade file is for a {} database; rehearse apply upgrades SQLite files",
                record.engine
            ))
            .into());
        }
        let files = code.iter().filter(|e| !e.folder).count();
        let (want_files, want_folders) = manifest.code.as_ref().map(|c| (c.files, c.folders)).unwrap_or((0, 0));
        if files != want_files || code.len() - files != want_folders {
            return Err(damaged("its code tree does not match the manifest".into()));
        }
        Ok(Bundle {
            path: path.to_path_buf(),
            sha256: sha256_hex(&data),
            manifest,
            record,
            script,
            hints,
            verification,
            data,
            code,
        })
    }

    pub fn has_code(&self) -> bool {
        self.manifest.code.is_some()
    }

    /// Write the code tree into the new folder `into` (which must not exist), every file synced to
    /// disk, so that a later rename can rely on it. std::fs only. Returns the number of files.
    pub fn extract_code(&self, into: &Path) -> anyhow::Result<usize> {
        fs_err::create_dir(into).with_context(|| format!("cannot create {}", into.display()))?;
        let mut files = 0;
        for e in &self.code {
            let target = e.path.split('/').fold(into.to_path_buf(), |p, part| p.join(part));
            if e.folder {
                fs_err::create_dir_all(&target).with_context(|| format!("cannot create {}", target.display()))?;
                continue;
            }
            if let Some(parent) = target.parent() {
                fs_err::create_dir_all(parent)?;
            }
            let mut f = std::fs::File::create(&target).with_context(|| format!("cannot write {}", target.display()))?;
            f.write_all(&self.data[e.start..e.start + e.len])?;
            if e.mtime > 0 {
                let _ = f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(e.mtime));
            }
            f.sync_all()?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                fs_err::set_permissions(&target, std::fs::Permissions::from_mode(e.mode))?;
            }
            let _ = e.mode;
            files += 1;
        }
        #[cfg(unix)]
        for e in self.code.iter().filter(|e| e.folder) {
            use std::os::unix::fs::PermissionsExt;
            let target = e.path.split('/').fold(into.to_path_buf(), |p, part| p.join(part));
            fs_err::set_permissions(&target, std::fs::Permissions::from_mode(e.mode | 0o700))?;
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(body: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        append_file(&mut b, MANIFEST, 0o644, 0, body).unwrap();
        let mut data = b.into_inner().unwrap();
        data.truncate(data.len() - 2 * BLOCK);
        let hash = sha256_hex(&data);
        let len = data.len() as u64;
        data.extend(seal(&hash, len).unwrap());
        data
    }

    #[test]
    fn seal_is_four_blocks_and_always_the_same() {
        assert_eq!(seal("ab", 1024).unwrap().len(), SEAL_LEN);
        assert_eq!(seal("ab", 1024).unwrap(), seal("ab", 1024).unwrap());
    }

    #[test]
    fn every_single_byte_flip_breaks_the_seal() {
        let data = sealed(b"{\"hello\": 1}");
        assert!(check_seal(&data).is_ok());
        for i in 0..data.len() {
            let mut d = data.clone();
            d[i] ^= 0x01;
            assert!(check_seal(&d).is_err(), "a flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn a_cut_short_or_extended_bundle_is_refused() {
        let data = sealed(b"{}");
        for n in [0, 1, BLOCK, data.len() - BLOCK, data.len() - 1] {
            assert!(check_seal(&data[..n]).is_err(), "cut at {n}");
        }
        let mut longer = data.clone();
        longer.extend([0u8; BLOCK]);
        assert!(check_seal(&longer).is_err());
    }

    #[test]
    fn names_that_do_not_travel_are_refused() {
        assert!(check_name("..").is_err());
        assert!(check_name("a:b").is_err());
        assert!(check_name("a\\b").is_err());
        assert!(check_name("app.py").is_ok());
    }
}
