//! docs/ agrees with the code. The lists come from the sources and from the real binary's `--help`,
//! never from a copy in this file, so adding a config key, a subcommand, an exit code or a flag
//! without documenting it fails here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rehearse");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn help(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).arg("--help").output().expect("rehearse runs");
    assert!(out.status.success(), "rehearse {args:?} --help failed");
    String::from_utf8(out.stdout).unwrap()
}

/// `--help` with every run of whitespace made one space, so a wrapped line reads as one.
fn help_flat(args: &[&str]) -> String {
    help(args).split_whitespace().collect::<Vec<_>>().join(" ") + " "
}

/// The string literals of one Rust source line, in order (no escapes are used in the tables read).
fn literals(line: &str) -> Vec<String> {
    line.split('"').skip(1).step_by(2).map(str::to_string).collect()
}

/// `(key, variable, flag)` rows of `src/config.rs`'s `KEYS` table.
fn config_keys() -> Vec<(String, String, String)> {
    let src = read("src/config.rs");
    let start = src.find("pub const KEYS").expect("src/config.rs has a KEYS table");
    let body = &src[start..];
    let end = body.find("];").expect("the KEYS table ends");
    let rows: Vec<_> = body[..end]
        .lines()
        .map(literals)
        .filter(|l| l.len() == 3)
        .map(|l| (l[0].clone(), l[1].clone(), l[2].clone()))
        .collect();
    assert!(rows.len() >= 5, "parsed too few keys from src/config.rs: {rows:?}");
    rows
}

/// The subcommands `rehearse --help` lists (without clap's own `help`).
fn subcommands() -> Vec<String> {
    let text = help(&[]);
    let list = text.split("Commands:").nth(1).expect("--help lists commands");
    let list = list.split("\n\n").next().unwrap();
    let cmds: Vec<String> = list
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect();
    assert!(cmds.len() >= 5 && cmds.iter().any(|c| c == "run"), "parsed commands: {cmds:?}");
    cmds
}

/// `(name, code)` of every `pub const NAME: i32 = N;` in src/exit.rs.
fn exit_codes() -> Vec<(String, i32)> {
    let codes: Vec<_> = read("src/exit.rs")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const "))
        .filter_map(|l| l.split_once(": i32 = "))
        .map(|(name, n)| (name.to_string(), n.trim_end_matches(';').trim().parse::<i32>().expect("a number")))
        .collect();
    assert!(codes.len() >= 5, "parsed codes: {codes:?}");
    codes
}

#[test]
fn every_config_key_variable_and_flag_is_in_the_config_reference() {
    let doc = read("docs/config.md");
    let mut missing = vec![];
    for (key, var, flag) in config_keys() {
        for item in [key, var, flag] {
            if !doc.contains(&format!("`{item}`")) {
                missing.push(item);
            }
        }
    }
    assert!(missing.is_empty(), "docs/config.md does not document: {missing:?}");
}

#[test]
fn every_config_variable_and_flag_is_what_rehearse_run_accepts() {
    let run = help_flat(&["run"]);
    for (_, var, flag) in config_keys() {
        assert!(run.contains(&format!("[env: {var}]")), "rehearse run --help has no {var}");
        assert!(run.contains(&format!("{flag} ")), "rehearse run --help has no {flag}");
    }
}

#[test]
fn every_subcommand_is_in_the_guide_or_the_index() {
    let docs = format!("{}\n{}", read("docs/guide.md"), read("docs/README.md"));
    let missing: Vec<_> = subcommands().into_iter().filter(|c| !docs.contains(&format!("rehearse {c}"))).collect();
    assert!(missing.is_empty(), "neither docs/guide.md nor docs/README.md mentions: {missing:?}");
}

#[test]
fn every_exit_code_is_in_the_exit_code_page() {
    let doc = read("docs/exit-codes.md");
    let missing: Vec<_> = exit_codes().into_iter().filter(|(_, n)| !doc.contains(&format!("\n| {n} |"))).collect();
    assert!(missing.is_empty(), "docs/exit-codes.md has no row for: {missing:?}");
}

/// `rehearse <sub> --flags...` in the shell blocks of a page: the subcommand and the flags written
/// after it on the same line, up to a pipe, redirection, `&&`, `;` or comment.
fn shown_commands(page: &str) -> Vec<(usize, String, Vec<String>)> {
    let mut found = vec![];
    let mut in_shell = false;
    for (n, line) in page.lines().enumerate() {
        let t = line.trim_start();
        if let Some(lang) = t.strip_prefix("```") {
            in_shell = !in_shell && matches!(lang.trim(), "sh" | "bash" | "shell" | "console");
            continue;
        }
        if !in_shell {
            continue;
        }
        let words: Vec<&str> = t.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            if *w != "rehearse" || i + 1 >= words.len() {
                continue;
            }
            let sub = words[i + 1].to_string();
            // `rehearse` as a folder or a word in prose, not the command: `cd rehearse && ...`.
            if !sub.chars().all(|c| c.is_ascii_lowercase() || c == '-') || sub.starts_with('-') {
                continue;
            }
            let flags: Vec<String> = words[i + 2..]
                .iter()
                .take_while(|w| !matches!(**w, "|" | "&&" | "||" | ";" | "#" | ">" | ">>" | "<" | "2>&1"))
                .filter(|w| w.starts_with("--"))
                .map(|w| w.split('=').next().unwrap().to_string())
                .collect();
            found.push((n + 1, sub, flags));
        }
    }
    found
}

#[test]
fn every_command_shown_in_the_guides_exists_with_those_flags() {
    let subs: BTreeSet<String> = subcommands().into_iter().collect();
    let mut wrong = vec![];
    for page in ["docs/guide.md", "docs/recipes.md", "docs/developers.md"] {
        let shown = shown_commands(&read(page));
        assert!(!shown.is_empty() || !Path::new(&root().join(page)).exists(), "{page}: no command found");
        for (line, sub, flags) in shown {
            if !subs.contains(&sub) {
                wrong.push(format!("{page}:{line}: rehearse {sub}: no such command"));
                continue;
            }
            let text = help_flat(&[&sub]);
            for f in flags {
                if !text.contains(&format!("{f} ")) {
                    wrong.push(format!("{page}:{line}: rehearse {sub} has no {f}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "commands in docs that the binary does not have:\n{}", wrong.join("\n"));
}

#[test]
fn every_page_is_in_the_index() {
    let index = read("docs/README.md");
    let mut missing = vec![];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") && name != "README.md" && !index.contains(&format!("({name}")) {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "docs/README.md does not link: {missing:?}");
}
