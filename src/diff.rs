//! diff(current, target) + hints -> Changes (DESIGN.md "Change"), with the seed workflow's
//! heuristics: a column that disappeared and one that appeared in the same table with the same type
//! family, one such pair per family, is a rename; more than one candidate is ambiguous and left to a
//! human (with a drafted pairing). A column holding data is never silently dropped and re-added.
//!
//! Pure: no database access. Probes and verdicts come later (probe.rs, findings.rs).

use crate::hints::{split_key, Hints};
use crate::schema::{Check, Column, Family, ForeignKey, Index, Schema, Table, Unique};
use anyhow::bail;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    TableAdded,
    TableDropped,
    TableRenamed,
    TableSplit,
    TableMerged,
    ColumnAdded,
    ColumnDropped,
    ColumnRenamed,
    ColumnTypeChanged,
    ColumnNullabilityChanged,
    ColumnDefaultChanged,
    PrimaryKeyChanged,
    UniqueAdded,
    UniqueDropped,
    IndexAdded,
    IndexDropped,
    ForeignKeyAdded,
    ForeignKeyDropped,
    CheckAdded,
    CheckDropped,
    /// The same index (columns, uniqueness, predicate) under another name: renamed to the target's.
    IndexRenamed,
    /// The same unique key, foreign key, check or primary key under another name.
    ConstraintRenamed,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(_)) => {}
            _ => unreachable!(),
        }
        match self {
            Kind::TableAdded => "table_added",
            Kind::TableDropped => "table_dropped",
            Kind::TableRenamed => "table_renamed",
            Kind::TableSplit => "table_split",
            Kind::TableMerged => "table_merged",
            Kind::ColumnAdded => "column_added",
            Kind::ColumnDropped => "column_dropped",
            Kind::ColumnRenamed => "column_renamed",
            Kind::ColumnTypeChanged => "column_type_changed",
            Kind::ColumnNullabilityChanged => "column_nullability_changed",
            Kind::ColumnDefaultChanged => "column_default_changed",
            Kind::PrimaryKeyChanged => "primary_key_changed",
            Kind::UniqueAdded => "unique_added",
            Kind::UniqueDropped => "unique_dropped",
            Kind::IndexAdded => "index_added",
            Kind::IndexDropped => "index_dropped",
            Kind::ForeignKeyAdded => "foreign_key_added",
            Kind::ForeignKeyDropped => "foreign_key_dropped",
            Kind::CheckAdded => "check_added",
            Kind::CheckDropped => "check_dropped",
            Kind::IndexRenamed => "index_renamed",
            Kind::ConstraintRenamed => "constraint_renamed",
        }
    }
}

/// One element of diff(current, target). `table`/`column` are the target's names (the current's
/// for drops); `old_table`/`old_column` the current's where they differ.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Change {
    pub kind: Option<Kind>,
    pub table: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_table: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_column: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Column>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Column>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub old_columns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<Index>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique: Option<Unique>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foreign_key: Option<ForeignKey>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<Check>,
    /// An index's or constraint's current name, when it is renamed to the target's (the target's
    /// object is in `index`, `unique`, `foreign_key` or `check`; a primary key's name in `columns`'
    /// place is `new_name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,
    /// Rename candidates, most likely first, when a rename is ambiguous.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<String>,
    /// Split: the new tables that take the old one's rows. Merge: the table it is folded into.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<String>,
    /// Merge: (column of the merged table, column of the table it joins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub join: Option<(String, String)>,
    /// A new column filled by merging this (dropped) table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<String>,
    /// A dropped column's likeliest new name when the evidence was too weak to call it a rename.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub possible_rename: Option<String>,
    /// Set when a hint (not a heuristic) decided this change.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub hinted: bool,
    /// An inferred rename whose old and new names mean the same (`names_mean_the_same`): the
    /// evidence that lets it carry the data without asking.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub names_agree: bool,
}

impl Change {
    pub fn kind(&self) -> Kind {
        self.kind.expect("every change has a kind")
    }

    fn new(kind: Kind, table: &str) -> Change {
        Change { kind: Some(kind), table: table.to_string(), ..Default::default() }
    }

    /// The current-side table name.
    pub fn source_table(&self) -> &str {
        self.old_table.as_deref().unwrap_or(&self.table)
    }

    /// Whether this change makes existing rows unique on a key: a new unique constraint, a new
    /// primary key, or a new unique index (a partial one within its predicate). Each gets the
    /// duplicate probe, its evidence, a verdict that is auto only at zero duplicates, and a guard.
    pub fn adds_uniqueness(&self) -> bool {
        match self.kind() {
            Kind::UniqueAdded => true,
            Kind::PrimaryKeyChanged => true,
            Kind::IndexAdded => self.index.as_ref().is_some_and(|i| i.unique),
            _ => false,
        }
    }

    /// A new partial unique index's predicate (in the target's column names): only the rows it
    /// holds for must be unique.
    pub fn key_predicate(&self) -> Option<&str> {
        match self.kind() {
            Kind::IndexAdded => self.index.as_ref().and_then(|i| i.predicate.as_deref()),
            _ => None,
        }
    }

    /// `kind table[.column]`, one line: what a drift or a leftover difference is called, and the
    /// key of a finding's verdict in the rehearsal record.
    pub fn label(&self) -> String {
        format!(
            "{} {}{}",
            self.kind().as_str(),
            self.table,
            self.column.as_ref().map(|c| format!(".{c}")).unwrap_or_default()
        )
    }
}

/// Column correspondences of one kept table: target column name -> current column name.
#[derive(Debug, Clone, Default)]
pub struct TableMap {
    pub current: String,
    pub target: String,
    pub columns: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct Diff {
    pub changes: Vec<Change>,
    /// Kept tables (present on both sides), by target name.
    pub kept: BTreeMap<String, TableMap>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

fn norm_default(d: &Option<String>) -> Option<String> {
    d.as_ref().map(|s| {
        let mut s = s.trim();
        while s.starts_with('(') && s.ends_with(')') && balanced(&s[1..s.len() - 1]) {
            s = s[1..s.len() - 1].trim();
        }
        s.to_string()
    })
}

fn balanced(s: &str) -> bool {
    let mut depth = 0i32;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

fn norm_expr(e: &str) -> String {
    e.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_lowercase()
}

/// Similarity of two names in [0, 1]: longest common subsequence over the mean length.
pub fn name_similarity(a: &str, b: &str) -> f64 {
    let (a, b): (Vec<char>, Vec<char>) = (a.to_lowercase().chars().collect(), b.to_lowercase().chars().collect());
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut dp = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in 0..a.len() {
        for j in 0..b.len() {
            dp[i + 1][j + 1] = if a[i] == b[j] { dp[i][j] + 1 } else { dp[i][j + 1].max(dp[i + 1][j]) };
        }
    }
    2.0 * dp[a.len()][b.len()] as f64 / (a.len() + b.len()) as f64
}

/// The words of an identifier, lower case: split at `_`, `-`, spaces and other punctuation, at a
/// lower-to-upper case change (`userName`) and between letters and digits (`phone2`).
pub fn name_tokens(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev: Option<char> = None;
    for ch in name.chars() {
        if !ch.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev = None;
            continue;
        }
        let boundary = match prev {
            Some(p) => (p.is_lowercase() && ch.is_uppercase()) || (p.is_alphabetic() != ch.is_alphabetic()),
            None => false,
        };
        if boundary && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        cur.extend(ch.to_lowercase());
        prev = Some(ch);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    // Numeronyms stay one word: `l10n`, `i18n`, `a11y`.
    let mut merged: Vec<String> = Vec::new();
    let mut i = 0;
    while i < out.len() {
        let one_letter = |w: &String| w.chars().count() == 1 && w.chars().all(char::is_alphabetic);
        if i + 2 < out.len()
            && one_letter(&out[i])
            && out[i + 1].chars().all(|c| c.is_ascii_digit())
            && (one_letter(&out[i + 2]) || out[i + 2].len() <= 2)
        {
            merged.push(format!("{}{}{}", out[i], out[i + 1], out[i + 2]));
            i += 3;
        } else {
            merged.push(out[i].clone());
            i += 1;
        }
    }
    merged
}

/// Short forms and local spellings that say the same thing, both ways.
const SAME_WORDS: &[(&str, &str)] = &[
    ("no", "number"),
    ("nr", "number"),
    ("nb", "number"),
    ("tel", "phone"),
    ("phone", "telephone"),
    ("mail", "email"),
    ("zip", "postcode"),
    ("dt", "date"),
    ("ts", "timestamp"),
    ("l10n", "localization"),
    ("l10n", "localisation"),
    ("l10n", "local"),
    ("l10n", "locale"),
    ("i18n", "internationalization"),
    ("i18n", "internationalisation"),
    ("a11y", "accessibility"),
];

/// The singular of a plural word, roughly (`categories` -> `category`, `boxes` -> `box`).
fn singular(w: &str) -> &str {
    if let Some(s) = w.strip_suffix("ies").filter(|s| s.len() >= 2) {
        return s; // compared with the `y` stripped too, see `stem`
    }
    for suffix in ["ses", "xes", "zes", "ches", "shes"] {
        if let Some(s) = w.strip_suffix(suffix) {
            return &w[..s.len() + suffix.len() - 2];
        }
    }
    match w.strip_suffix('s') {
        Some(s) if s.len() >= 2 && !s.ends_with('s') => s,
        _ => w,
    }
}

fn stem(w: &str) -> String {
    let s = singular(w);
    s.strip_suffix('y').filter(|s| s.len() >= 2).unwrap_or(s).to_string()
}

/// One slip apart, in the ways spellings and typos differ without changing the word: one letter
/// more or less (`adress` address, `colour` color), two neighbours swapped (`centre` center), or
/// `s` for `z` (`organisation` organization). Not any other letter for another: `height` and
/// `weight`, `price` and `prize` are other words.
fn one_slip(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let (short, long) = if a.len() <= b.len() { (&a, &b) } else { (&b, &a) };
    if long.len() == short.len() + 1 {
        return (0..long.len()).any(|i| long[..i] == short[..i] && long[i + 1..] == short[i..]);
    }
    if a.len() != b.len() {
        return false;
    }
    let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    match diff.as_slice() {
        [i] => matches!((a[*i], b[*i]), ('s', 'z') | ('z', 's')),
        [i, j] => *j == i + 1 && a[*i] == b[*j] && a[*j] == b[*i],
        _ => false,
    }
}

/// Is `short` an abbreviation of `long`: its first letter, then letters of `long` in order
/// (`qty` quantity, `addr` address, `desc` description, `pwd` password), three letters at least?
fn abbreviates(short: &str, long: &str) -> bool {
    if short.chars().count() < 3 || short.len() >= long.len() || short.chars().next() != long.chars().next() {
        return false;
    }
    let mut rest = long.chars();
    short.chars().all(|c| rest.any(|l| l == c))
}

/// Do two words of a name mean the same: equal, singular and plural, a documented short form or
/// local spelling (`SAME_WORDS`), an abbreviation (`abbreviates`), or one slip apart (`one_slip`)
/// in words of five letters or more.
pub fn same_word(a: &str, b: &str) -> bool {
    if a == b || stem(a) == stem(b) {
        return true;
    }
    if SAME_WORDS.iter().any(|(x, y)| (a == *x && b == *y) || (a == *y && b == *x)) {
        return true;
    }
    if abbreviates(a, b) || abbreviates(b, a) {
        return true;
    }
    a.chars().count().min(b.chars().count()) >= 5 && one_slip(a, b)
}

/// Words that tell two columns apart when the rest of their names is the same: opposites and
/// pairs (`min_price` and `max_price` are two columns, not one renamed).
const OPPOSITES: &[(&str, &str)] = &[
    ("first", "last"),
    ("min", "max"),
    ("minimum", "maximum"),
    ("start", "end"),
    ("begin", "end"),
    ("from", "to"),
    ("old", "new"),
    ("src", "dst"),
    ("source", "target"),
    ("source", "destination"),
    ("in", "out"),
    ("input", "output"),
    ("open", "close"),
    ("opened", "closed"),
    ("before", "after"),
    ("prev", "next"),
    ("previous", "next"),
    ("lower", "upper"),
    ("low", "high"),
    ("left", "right"),
    ("top", "bottom"),
    ("created", "updated"),
    ("created", "modified"),
    ("created", "deleted"),
    ("width", "height"),
    ("lat", "lon"),
    ("lat", "lng"),
    ("latitude", "longitude"),
    ("buy", "sell"),
    ("debit", "credit"),
    ("home", "work"),
    ("home", "office"),
    ("billing", "shipping"),
    ("sender", "recipient"),
    ("sent", "received"),
    ("inner", "outer"),
    ("public", "private"),
    ("enabled", "disabled"),
    ("primary", "secondary"),
    ("parent", "child"),
    ("day", "night"),
    ("net", "gross"),
    ("local", "remote"),
    ("read", "write"),
    ("x", "y"),
    ("y", "z"),
];

/// Words too common to say by themselves that two names mean the same (`created_at`,
/// `updated_at` share `at`; `first_name`, `last_name` share `name`).
const GENERIC: &[&str] = &[
    "id", "no", "nr", "num", "number", "at", "on", "by", "of", "is", "has", "date", "time", "ts", "dt", "name", "code",
    "type", "kind", "value", "val", "flag", "count", "key", "text", "info", "data", "status", "the", "a", "an",
];

fn opposite(a: &str, b: &str) -> bool {
    let pair = |x: &str, y: &str| OPPOSITES.iter().any(|(p, q)| (x == *p && y == *q) || (x == *q && y == *p));
    let distinct_marks = |x: &str, y: &str| {
        let mark = |w: &str| w.chars().all(|c| c.is_ascii_digit()) || w.chars().count() == 1;
        mark(x) && mark(y) && x != y
    };
    pair(a, b) || distinct_marks(a, b)
}

/// Words a name may gain or lose without meaning something else: a trailing `id` (`office` ->
/// `office_id`, the foreign-key column convention) and the table's own name as a prefix
/// (`staff_name` -> `name` in table `staff`).
fn significant_words(name: &str, table: &str) -> Vec<String> {
    let mut words = name_tokens(name);
    let table_words = name_tokens(table);
    if !table_words.is_empty()
        && words.len() > table_words.len()
        && words.iter().zip(&table_words).all(|(w, t)| same_word(w, t))
    {
        words.drain(..table_words.len());
    }
    if words.len() > 1 && words.last().is_some_and(|w| w == "id") {
        words.pop();
    }
    words
}

/// The evidence, from the names alone, that `old` and `new` (in table `table`; "" for tables) name
/// the same thing, so that a rename may carry one's data into the other without asking:
/// - the same letters, case and separators aside (`userName` -> `user_name`);
/// - the same words in another order (`name_first` -> `first_name`);
/// - word for word the same meaning by `same_word` (`cust_addr` -> `customer_address`,
///   `phone_no` -> `phone_number`, `colour` -> `color`, `categories` -> `category`);
/// - any of these once the table's name as a prefix and a trailing `id` are set aside
///   (`staff_office` -> `office_id` in table `staff`);
/// - a shared word that is not a generic one (`GENERIC`: id, at, date, name, ...), covering at
///   least half the words of each name, where the words that differ are not opposites or marks
///   (`OPPOSITES`, digits, single letters): `Total Sum` -> `Grand Total`, `fax` -> `fax_number`,
///   `org_site` -> `gis_site`; but not `min_price` -> `max_price`, `phone1` -> `phone2`.
///
/// Everything else (`fax` -> `notes`, `price` -> `cost`, `height` -> `weight`, two columns of a
/// type that swapped) is no evidence: the rename is then a question for a human.
pub fn names_mean_the_same(table: &str, old: &str, new: &str) -> bool {
    let (a, b) = (name_tokens(old), name_tokens(new));
    if a.is_empty() || b.is_empty() {
        return false;
    }
    if a.concat() == b.concat() {
        return true;
    }
    let (a, b) = (significant_words(old, table), significant_words(new, table));
    if a.is_empty() || b.is_empty() {
        return false;
    }
    // Word for word, in order.
    if a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| same_word(x, y)) {
        return true;
    }
    // Each word of one matched to its own word of the other, in any order.
    let mut free: Vec<&String> = b.iter().collect();
    let mut shared: Vec<&String> = Vec::new();
    let mut unmatched_a: Vec<&String> = Vec::new();
    for x in &a {
        match free.iter().position(|y| same_word(x, y)) {
            Some(i) => {
                free.remove(i);
                shared.push(x);
            }
            None => unmatched_a.push(x),
        }
    }
    if unmatched_a.is_empty() && free.is_empty() {
        return true;
    }
    let telling = |w: &str| w.chars().count() >= 2 && w.chars().all(char::is_alphabetic) && !GENERIC.contains(&w);
    let covers = |n: usize| shared.len() * 2 >= n;
    shared.iter().any(|w| telling(w))
        && covers(a.len())
        && covers(b.len())
        && !unmatched_a.iter().any(|x| free.iter().any(|y| opposite(x, y)))
}

/// Does `new` hold every value `old` can (same family, no narrower)?
pub fn widens(old: &str, new: &str) -> bool {
    use crate::schema::{char_limit, integer_rank, numeric_precision};
    if Family::of(old) != Family::of(new) {
        return false;
    }
    match Family::of(new) {
        Family::Text => match (char_limit(old), char_limit(new)) {
            (_, None) => true,
            (Some(o), Some(n)) => n >= o,
            (None, Some(_)) => false,
        },
        Family::Integer => integer_rank(new) >= integer_rank(old),
        Family::Decimal => match (numeric_precision(old), numeric_precision(new)) {
            (Some((op, os)), Some((np, ns))) => np >= op && ns >= os && np - ns >= op - os,
            (_, None) => true,
            (None, Some(_)) => false,
        },
        _ => true,
    }
}

/// How strongly a dropped and an added column of the same family look like one renamed column,
/// in [0, 1]: the same type (0.4; a widening 0.3, else 0.1), similar names (up to 0.4) and the
/// same position (0.2). A lone pair is a rename from `RENAME_THRESHOLD` up: below it, a rename
/// would be a guess that could put one column's data into another, so it stays drop + add (the
/// drop is lossy and flagged, with the likely rename named).
pub fn rename_score(old: &Column, new: &Column, old_pos: usize, new_pos: usize) -> f64 {
    let ty = if old.data_type == new.data_type {
        0.4
    } else if widens(&old.data_type, &new.data_type) {
        0.3
    } else {
        0.1
    };
    let pos = if old_pos == new_pos { 0.2 } else { 0.0 };
    ty + 0.4 * name_similarity(&old.name, &new.name) + pos
}

pub const RENAME_THRESHOLD: f64 = 0.5;

/// Check that every hint names something that exists, so a typo is an error and not a lost column.
fn validate_hints(cur: &Schema, tgt: &Schema, hints: &Hints) -> anyhow::Result<()> {
    let in_either = |t: &str| cur.table(t).is_some() || tgt.table(t).is_some();
    for (old, new) in &hints.renames.tables {
        if cur.table(old).is_none() {
            bail!("hints: renames.tables names {old:?}, which is not a table in live");
        }
        if tgt.table(new).is_none() {
            bail!("hints: renames.tables renames {old:?} to {new:?}, which is not a table in the new schema");
        }
    }
    for (table, n) in &hints.accept_delete {
        if tgt.table(table).is_none() {
            bail!("hints: accept_delete names {table:?}, which is not a table of the new schema (name the table as the new code does)");
        }
        if *n < 0 {
            bail!("hints: accept_delete {table:?}: {n} is not a number of rows (0 or more)");
        }
    }
    for (key, new) in &hints.renames.columns {
        let (t, c) = split_key(key, |t| cur.table(t).is_some())?;
        if cur.table(t).and_then(|t| t.column(c)).is_none() {
            bail!("hints: renames.columns {key:?}: live table {t:?} has no column {c:?}");
        }
        let new_table = hints.renames.tables.get(t).map(String::as_str).unwrap_or(t);
        if tgt.table(new_table).and_then(|t| t.column(new)).is_none() {
            bail!("hints: renames.columns {key:?}: the new table {new_table:?} has no column {new:?}");
        }
    }
    for key in hints.values.keys().chain(hints.defaults.keys()) {
        let (t, c) = split_key(key, in_either)?;
        let exists = [cur.table(t), tgt.table(t)].iter().flatten().any(|t| t.column(c).is_some());
        if !exists {
            bail!("hints: {key:?}: table {t:?} has no column {c:?} in either schema");
        }
    }
    for key in &hints.accept_loss {
        if cur.table(key).is_some() {
            continue;
        }
        let (t, c) = split_key(key, |t| cur.table(t).is_some())
            .map_err(|_| anyhow::anyhow!("hints: accept_loss {key:?} is not a live table or table.column"))?;
        if cur.table(t).and_then(|t| t.column(c)).is_none() {
            bail!("hints: accept_loss {key:?}: live table {t:?} has no column {c:?}");
        }
    }
    Ok(())
}

pub fn diff(cur: &Schema, tgt: &Schema, hints: &Hints) -> anyhow::Result<Diff> {
    validate_hints(cur, tgt, hints)?;
    let mut out = Diff::default();
    // Target table name -> current table name.
    let mut source_of: BTreeMap<&str, &str> = BTreeMap::new();
    let mut inferred_renames: Vec<&str> = Vec::new();
    for t in &tgt.tables {
        let renamed_from = hints.renames.tables.iter().find(|(_, new)| *new == &t.name).map(|(old, _)| old.as_str());
        if let Some(old) = renamed_from {
            source_of.insert(&t.name, old);
        } else if cur.table(&t.name).is_some() && !hints.renames.tables.contains_key(&t.name) {
            source_of.insert(&t.name, &t.name);
        }
    }
    // A table that disappeared and one that appeared with exactly the same columns (names and
    // types, in any order) are one renamed table, when neither has another such partner.
    let unmatched_cur: Vec<&Table> = cur.tables.iter().filter(|t| !source_of.values().any(|s| *s == t.name)).collect();
    let unmatched_tgt: Vec<&Table> = tgt.tables.iter().filter(|t| !source_of.contains_key(t.name.as_str())).collect();
    let same_columns = |a: &Table, b: &Table| {
        let key = |t: &Table| {
            let mut v: Vec<(String, String)> =
                t.columns.iter().map(|c| (c.name.clone(), c.data_type.clone())).collect();
            v.sort();
            v
        };
        key(a) == key(b)
    };
    let not_renamed = |old: &str, new: &str| hints.not_renames.tables.get(old).is_some_and(|n| n == new);
    for t in &unmatched_tgt {
        let from: Vec<&&Table> =
            unmatched_cur.iter().filter(|c| same_columns(c, t) && !not_renamed(&c.name, &t.name)).collect();
        if from.len() == 1 && unmatched_tgt.iter().filter(|o| same_columns(from[0], o)).count() == 1 {
            source_of.insert(&t.name, &from[0].name);
            inferred_renames.push(&t.name);
        }
    }
    let kept_sources: Vec<&str> = source_of.values().copied().collect();
    // Drops first, referencing tables before the tables they reference.
    for t in cur.fk_order().into_iter().rev() {
        if !kept_sources.contains(&t.name.as_str()) {
            let mut c = Change::new(Kind::TableDropped, &t.name);
            c.columns = t.columns.iter().map(|c| c.name.clone()).collect();
            out.changes.push(c);
        }
    }
    for t in tgt.fk_order() {
        match source_of.get(t.name.as_str()) {
            None => {
                let mut c = Change::new(Kind::TableAdded, &t.name);
                c.columns = t.columns.iter().map(|c| c.name.clone()).collect();
                out.changes.push(c);
            }
            Some(old) => {
                let ct = cur.table(old).expect("source table exists");
                if *old != t.name {
                    let mut c = Change::new(Kind::TableRenamed, &t.name);
                    c.old_table = Some(old.to_string());
                    c.hinted = !inferred_renames.contains(&t.name.as_str());
                    c.names_agree = names_mean_the_same("", old, &t.name);
                    out.changes.push(c);
                }
                let map = diff_table(ct, t, hints, &source_of, cur, &mut out.changes);
                out.kept.insert(t.name.clone(), map);
            }
        }
    }
    detect_split_and_merge(cur, tgt, hints, &mut out);
    Ok(out)
}

/// A dropped table whose primary key and columns reappear across two or more new tables is a
/// split; a dropped table whose other columns reappear as new columns of the table its foreign key
/// points at is a merge. Either replaces the table_dropped change (the data moves, it is not lost);
/// hints (`split`, `merge`) confirm them or name them where the shapes alone do not tell.
fn detect_split_and_merge(cur: &Schema, tgt: &Schema, hints: &Hints, out: &mut Diff) {
    let added: Vec<&Table> =
        out.changes.iter().filter(|c| c.kind() == Kind::TableAdded).filter_map(|c| tgt.table(&c.table)).collect();
    let dropped: Vec<String> =
        out.changes.iter().filter(|c| c.kind() == Kind::TableDropped).map(|c| c.table.clone()).collect();
    for name in dropped {
        let Some(d) = cur.table(&name) else { continue };
        let has = |t: &Table, c: &str| t.column(c).is_some();
        let non_key: Vec<&str> =
            d.columns.iter().map(|c| c.name.as_str()).filter(|c| !d.primary_key.iter().any(|k| k == c)).collect();
        // Split: hinted parts, or new tables sharing the primary key and some of the columns.
        let hinted_parts = hints.split.get(&name);
        let parts: Vec<&Table> = match hinted_parts {
            Some(ps) => ps.iter().filter_map(|p| tgt.table(p)).collect(),
            None => added
                .iter()
                .filter(|a| {
                    !d.primary_key.is_empty() && a.primary_key == d.primary_key && non_key.iter().any(|c| has(a, c))
                })
                .copied()
                .collect(),
        };
        if parts.len() >= 2 || (hinted_parts.is_some() && !parts.is_empty()) {
            if let Some(ch) = out.changes.iter_mut().find(|c| c.kind() == Kind::TableDropped && c.table == name) {
                ch.kind = Some(Kind::TableSplit);
                ch.parts = parts.iter().map(|p| p.name.clone()).collect();
                ch.hinted = hinted_parts.is_some();
                // Columns no part carries are lost.
                ch.columns =
                    d.columns.iter().map(|c| c.name.clone()).filter(|c| !parts.iter().any(|p| has(p, c))).collect();
            }
            continue;
        }
        // Merge: into a kept table that gained this table's columns, joined through a foreign key.
        let hinted_merge = hints
            .merge
            .iter()
            .find(|(_, m)| m.from.contains(&name))
            .map(|(into, m)| (into.clone(), m.on.get(&name).cloned()));
        let candidate = d.foreign_keys.iter().filter(|fk| fk.columns.len() == 1).find_map(|fk| {
            let into = out.kept.iter().find(|(_, m)| m.current == fk.ref_table).map(|(t, _)| t.clone())?;
            if let Some((hinted_into, _)) = &hinted_merge {
                if hinted_into != &into {
                    return None;
                }
            }
            let gained: Vec<&str> = non_key
                .iter()
                .copied()
                .filter(|c| *c != fk.columns[0])
                .filter(|c| {
                    out.changes
                        .iter()
                        .any(|ch| ch.kind() == Kind::ColumnAdded && ch.table == into && ch.column.as_deref() == Some(c))
                })
                .collect();
            (!gained.is_empty() || hinted_merge.is_some())
                .then(|| (into, fk.columns[0].clone(), fk.ref_columns[0].clone(), gained))
        });
        let Some((into, on, key, gained)) = candidate else { continue };
        if let Some((_, Some(hinted_on))) = &hinted_merge {
            if hinted_on != &on {
                continue;
            }
        }
        let gained: Vec<String> = gained.into_iter().map(str::to_string).collect();
        let lost: Vec<String> =
            non_key.iter().map(|c| c.to_string()).filter(|c| !gained.contains(c) && c != &on).collect();
        if let Some(ch) = out.changes.iter_mut().find(|c| c.kind() == Kind::TableDropped && c.table == name) {
            ch.kind = Some(Kind::TableMerged);
            ch.parts = vec![into.clone()];
            ch.join = Some((on, key));
            ch.hinted = hinted_merge.is_some();
            ch.columns = gained.clone();
            ch.old_columns = lost;
        }
        // The new columns are filled by the merge, not left to a human.
        for ch in out.changes.iter_mut() {
            if ch.kind() == Kind::ColumnAdded
                && ch.table == into
                && ch.column.as_ref().is_some_and(|c| gained.contains(c))
            {
                ch.merged_from = Some(name.clone());
            }
        }
    }
}

fn diff_table(
    ct: &Table,
    tt: &Table,
    hints: &Hints,
    source_of: &BTreeMap<&str, &str>,
    cur: &Schema,
    out: &mut Vec<Change>,
) -> TableMap {
    let mut map = TableMap { current: ct.name.clone(), target: tt.name.clone(), columns: BTreeMap::new() };
    let with_old = |mut c: Change| {
        if ct.name != tt.name {
            c.old_table = Some(ct.name.clone());
        }
        c
    };
    // Hinted renames: target column -> current column.
    for (key, new) in &hints.renames.columns {
        if let Some(old) = key.strip_prefix(&format!("{}.", ct.name)) {
            if ct.column(old).is_some() && tt.column(new).is_some() {
                map.columns.insert(new.clone(), old.to_string());
            }
        }
    }
    let hinted: Vec<String> = map.columns.keys().cloned().collect();
    for c in &tt.columns {
        if !map.columns.contains_key(&c.name)
            && ct.column(&c.name).is_some()
            && !map.columns.values().any(|o| o == &c.name)
        {
            map.columns.insert(c.name.clone(), c.name.clone());
        }
    }
    let dropped: Vec<&Column> = ct.columns.iter().filter(|c| !map.columns.values().any(|o| o == &c.name)).collect();
    let added: Vec<&Column> = tt.columns.iter().filter(|c| !map.columns.contains_key(&c.name)).collect();

    // Rename inference, one family at a time.
    let mut ambiguous_added: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut ambiguous_dropped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut inferred: Vec<String> = Vec::new();
    let mut weak: BTreeMap<String, String> = BTreeMap::new();
    let families: std::collections::BTreeSet<Family> = added.iter().map(|c| Family::of(&c.data_type)).collect();
    for fam in families {
        let d: Vec<&&Column> = dropped.iter().filter(|c| Family::of(&c.data_type) == fam).collect();
        let a: Vec<&&Column> = added.iter().filter(|c| Family::of(&c.data_type) == fam).collect();
        if d.is_empty() {
            continue;
        }
        let pos = |t: &Table, n: &str| t.columns.iter().position(|c| c.name == n).unwrap_or(usize::MAX);
        // A pairing the hints say is no rename is never proposed again.
        let said_no = |dc: &Column, ac: &Column| {
            hints.not_renames.columns.get(&format!("{}.{}", ct.name, dc.name)).is_some_and(|n| n == &ac.name)
        };
        let score = |dc: &Column, ac: &Column| match said_no(dc, ac) {
            true => 0.0,
            false => rename_score(dc, ac, pos(ct, &dc.name), pos(tt, &ac.name)),
        };
        // Strong candidates of each side, best first, among the columns still open.
        let ranked = |v: &mut Vec<(f64, String)>| -> Vec<String> {
            v.sort_by(|x, y| y.0.total_cmp(&x.0));
            v.drain(..).map(|(_, n)| n).collect()
        };
        let strong_for_d = |dc: &Column, a: &[&&Column]| -> Vec<String> {
            let mut v: Vec<(f64, String)> =
                a.iter().map(|ac| (score(dc, ac), ac.name.clone())).filter(|(s, _)| *s >= RENAME_THRESHOLD).collect();
            ranked(&mut v)
        };
        let strong_for_a = |ac: &Column, d: &[&&Column]| -> Vec<String> {
            let mut v: Vec<(f64, String)> =
                d.iter().map(|dc| (score(dc, ac), dc.name.clone())).filter(|(s, _)| *s >= RENAME_THRESHOLD).collect();
            ranked(&mut v)
        };
        let mutual = |dc: &Column, an: &str, a: &[&&Column], d: &[&&Column]| {
            a.iter().find(|c| c.name == an).is_some_and(|ac| strong_for_a(ac, d) == [dc.name.clone()])
        };
        // First the pairs whose names say they are one column: each the other's only strong
        // candidate, and the names agree (`names_mean_the_same`). Those are settled before the
        // rest is looked at, so they neither crowd nor join another pairing.
        for dc in &d {
            if let [only] = strong_for_d(dc, &a).as_slice() {
                if mutual(dc, only, &a, &d) && names_mean_the_same(&ct.name, &dc.name, only) {
                    map.columns.insert(only.clone(), dc.name.clone());
                    inferred.push(only.clone());
                }
            }
        }
        let d: Vec<&&Column> = d.into_iter().filter(|c| !map.columns.values().any(|o| o == &c.name)).collect();
        let a: Vec<&&Column> = a.into_iter().filter(|c| !map.columns.contains_key(&c.name)).collect();
        // With more than one open column on either side, type and position cannot tell which
        // went where (two columns of one family may have swapped): every open column of the
        // family is a candidate of every other, ranked, and nothing is paired.
        let crowded = d.len() > 1 || a.len() > 1;
        let open_for_d = |dc: &Column| -> Vec<String> {
            let mut v: Vec<(f64, String)> =
                a.iter().filter(|ac| !said_no(dc, ac)).map(|ac| (score(dc, ac), ac.name.clone())).collect();
            ranked(&mut v)
        };
        for dc in &d {
            let sd = strong_for_d(dc, &a);
            match sd.as_slice() {
                // A lone pair, each the other's only strong candidate: a rename (automatic only
                // when the names agree or a hint says so; else the report asks).
                [only] if !crowded && mutual(dc, only, &a, &d) => {
                    map.columns.insert(only.clone(), dc.name.clone());
                    inferred.push(only.clone());
                }
                [_] if crowded => {
                    ambiguous_dropped.insert(dc.name.clone(), open_for_d(dc));
                }
                [] => {
                    // No strong candidate: a drop; name the likeliest rename so a human can say so.
                    let open = a.iter().filter(|ac| !said_no(dc, ac));
                    if let Some(best) = open.max_by(|x, y| score(dc, x).total_cmp(&score(dc, y))) {
                        weak.insert(dc.name.clone(), best.name.clone());
                    }
                }
                _ => {
                    ambiguous_dropped.insert(dc.name.clone(), sd);
                }
            }
        }
        for ac in &a {
            if map.columns.contains_key(&ac.name) {
                continue;
            }
            let mut v: Vec<(f64, String)> = d
                .iter()
                .filter(|dc| {
                    score(dc, ac) >= RENAME_THRESHOLD
                        || ambiguous_dropped.get(&dc.name).is_some_and(|c| c.contains(&ac.name))
                })
                .map(|dc| (score(dc, ac), dc.name.clone()))
                .collect();
            let sa = ranked(&mut v);
            let contested = sa.len() > 1 || sa.iter().any(|dn| ambiguous_dropped.contains_key(dn));
            if contested {
                ambiguous_added.insert(ac.name.clone(), sa);
            }
        }
        // A dropped column whose only strong candidate is contested by another: ambiguous too.
        for dc in &d {
            if !map.columns.values().any(|o| o == &dc.name) && !ambiguous_dropped.contains_key(&dc.name) {
                let sd = strong_for_d(dc, &a);
                if sd.iter().any(|an| ambiguous_added.contains_key(an)) {
                    weak.remove(&dc.name);
                    ambiguous_dropped.insert(dc.name.clone(), sd);
                }
            }
        }
    }

    // Drops (not renamed), then the target's columns in order.
    for c in &ct.columns {
        if map.columns.values().any(|o| o == &c.name) {
            continue;
        }
        let mut ch = with_old(Change::new(Kind::ColumnDropped, &tt.name));
        ch.column = Some(c.name.clone());
        ch.from = Some(c.clone());
        ch.candidates = ambiguous_dropped.get(&c.name).cloned().unwrap_or_default();
        ch.possible_rename = weak.get(&c.name).cloned();
        ch.hinted = hints.accepts_loss(&ct.name, Some(&c.name));
        out.push(ch);
    }
    for c in &tt.columns {
        let Some(old) = map.columns.get(&c.name) else {
            let mut ch = with_old(Change::new(Kind::ColumnAdded, &tt.name));
            ch.column = Some(c.name.clone());
            ch.to = Some(c.clone());
            ch.candidates = ambiguous_added.get(&c.name).cloned().unwrap_or_default();
            out.push(ch);
            continue;
        };
        let oc = ct.column(old).expect("mapped column exists");
        let base = |kind| {
            let mut ch = with_old(Change::new(kind, &tt.name));
            ch.column = Some(c.name.clone());
            if old != &c.name {
                ch.old_column = Some(old.clone());
            }
            ch.from = Some(oc.clone());
            ch.to = Some(c.clone());
            ch
        };
        if old != &c.name {
            let mut ch = base(Kind::ColumnRenamed);
            ch.hinted = hinted.contains(&c.name);
            ch.names_agree = names_mean_the_same(&ct.name, old, &c.name);
            out.push(ch);
        }
        if oc.data_type != c.data_type {
            out.push(base(Kind::ColumnTypeChanged));
        }
        if oc.nullable != c.nullable {
            out.push(base(Kind::ColumnNullabilityChanged));
        }
        if norm_default(&oc.default) != norm_default(&c.default) || oc.value_source() != c.value_source() {
            out.push(base(Kind::ColumnDefaultChanged));
        }
    }
    let _ = inferred;

    // Keys, uniques, indexes, foreign keys and checks, with current column names mapped to the
    // target's so a renamed column does not look like a new index.
    let rename = |cols: &[String]| -> Vec<String> {
        cols.iter()
            .map(|c| map.columns.iter().find(|(_, o)| *o == c).map(|(n, _)| n.clone()).unwrap_or_else(|| c.clone()))
            .collect()
    };
    let ref_table_now = |t: &str| -> String {
        source_of.iter().find(|(_, o)| **o == t).map(|(n, _)| n.to_string()).unwrap_or_else(|| t.to_string())
    };
    if rename(&ct.primary_key) != tt.primary_key {
        let mut ch = with_old(Change::new(Kind::PrimaryKeyChanged, &tt.name));
        ch.columns = tt.primary_key.clone();
        ch.old_columns = ct.primary_key.clone();
        out.push(ch);
    }
    let cur_uniques: Vec<Vec<String>> = ct.uniques.iter().map(|u| rename(&u.columns)).collect();
    let tgt_uniques: Vec<Vec<String>> = tt.uniques.iter().map(|u| u.columns.clone()).collect();
    for (u, cols) in ct.uniques.iter().zip(&cur_uniques) {
        if !tgt_uniques.contains(cols) {
            let mut ch = with_old(Change::new(Kind::UniqueDropped, &tt.name));
            ch.columns = cols.clone();
            ch.unique = Some(u.clone());
            out.push(ch);
        }
    }
    for u in &tt.uniques {
        if !cur_uniques.contains(&u.columns) {
            let mut ch = with_old(Change::new(Kind::UniqueAdded, &tt.name));
            ch.columns = u.columns.clone();
            ch.unique = Some(u.clone());
            out.push(ch);
        }
    }
    // Names: what the next release's own migration will name (`DROP INDEX <name>`), and what the
    // fingerprint records. An object kept under another name is renamed to the target's; names
    // the engine does not keep (SQLite's unnamed constraints) are None and never compared.
    let renamed = |kind, old: &Option<String>, new: &Option<String>, cols: &[String]| {
        let (Some(o), Some(n)) = (old, new) else { return None };
        (o != n).then(|| {
            let mut ch = with_old(Change::new(kind, &tt.name));
            ch.columns = cols.to_vec();
            ch.old_name = Some(o.clone());
            ch.new_name = Some(n.clone());
            ch
        })
    };
    if rename(&ct.primary_key) == tt.primary_key {
        out.extend(renamed(Kind::ConstraintRenamed, &ct.primary_key_name, &tt.primary_key_name, &tt.primary_key));
    }
    for (old, new) in pair_by_key(&ct.uniques, &cur_uniques, &tt.uniques, &tgt_uniques, |u| u.name.clone()) {
        if let Some(mut ch) = renamed(Kind::ConstraintRenamed, &old.name, &new.name, &new.columns) {
            ch.unique = Some(new.clone());
            out.push(ch);
        }
    }
    let index_key = |i: &Index, cols: Vec<String>| (cols, i.unique, i.predicate.as_deref().map(norm_expr));
    let cur_idx: Vec<_> = ct.indexes.iter().map(|i| index_key(i, rename(&i.columns))).collect();
    let tgt_idx: Vec<_> = tt.indexes.iter().map(|i| index_key(i, i.columns.clone())).collect();
    for (i, k) in ct.indexes.iter().zip(&cur_idx) {
        if !tgt_idx.contains(k) {
            let mut ch = with_old(Change::new(Kind::IndexDropped, &tt.name));
            ch.columns = k.0.clone();
            ch.index = Some(i.clone());
            out.push(ch);
        }
    }
    for (i, k) in tt.indexes.iter().zip(&tgt_idx) {
        if !cur_idx.contains(k) {
            let mut ch = with_old(Change::new(Kind::IndexAdded, &tt.name));
            ch.columns = k.0.clone();
            ch.index = Some(i.clone());
            out.push(ch);
        }
    }
    for (old, new) in pair_by_key(&ct.indexes, &cur_idx, &tt.indexes, &tgt_idx, |i| Some(i.name.clone())) {
        if let Some(mut ch) =
            renamed(Kind::IndexRenamed, &Some(old.name.clone()), &Some(new.name.clone()), &new.columns)
        {
            ch.index = Some(new.clone());
            out.push(ch);
        }
    }
    let fk_key = |f: &ForeignKey, cols: Vec<String>, rt: String, rcols: Vec<String>| {
        (cols, rt, rcols, f.on_delete.clone(), f.on_update.clone(), f.deferrable.clone())
    };
    let cur_fk: Vec<_> = ct
        .foreign_keys
        .iter()
        .map(|f| {
            let rt = ref_table_now(&f.ref_table);
            // Referenced columns renamed in the referenced table.
            let rcols = match (cur.table(&f.ref_table), hints.renames.columns.is_empty()) {
                (Some(_), false) => f
                    .ref_columns
                    .iter()
                    .map(|c| {
                        hints.renames.columns.get(&format!("{}.{c}", f.ref_table)).cloned().unwrap_or_else(|| c.clone())
                    })
                    .collect(),
                _ => f.ref_columns.clone(),
            };
            fk_key(f, rename(&f.columns), rt, rcols)
        })
        .collect();
    let tgt_fk: Vec<_> = tt
        .foreign_keys
        .iter()
        .map(|f| fk_key(f, f.columns.clone(), f.ref_table.clone(), f.ref_columns.clone()))
        .collect();
    for (f, k) in ct.foreign_keys.iter().zip(&cur_fk) {
        if !tgt_fk.contains(k) {
            let mut ch = with_old(Change::new(Kind::ForeignKeyDropped, &tt.name));
            ch.columns = k.0.clone();
            ch.foreign_key = Some(f.clone());
            out.push(ch);
        }
    }
    for (f, k) in tt.foreign_keys.iter().zip(&tgt_fk) {
        if !cur_fk.contains(k) {
            let mut ch = with_old(Change::new(Kind::ForeignKeyAdded, &tt.name));
            ch.columns = k.0.clone();
            ch.foreign_key = Some(f.clone());
            out.push(ch);
        }
    }
    for (old, new) in pair_by_key(&ct.foreign_keys, &cur_fk, &tt.foreign_keys, &tgt_fk, |f| f.name.clone()) {
        if let Some(mut ch) = renamed(Kind::ConstraintRenamed, &old.name, &new.name, &new.columns) {
            ch.foreign_key = Some(new.clone());
            out.push(ch);
        }
    }
    let cur_chk: Vec<String> = ct.checks.iter().map(|c| norm_expr(&c.expr)).collect();
    let tgt_chk: Vec<String> = tt.checks.iter().map(|c| norm_expr(&c.expr)).collect();
    for (c, k) in ct.checks.iter().zip(&cur_chk) {
        if !tgt_chk.contains(k) {
            let mut ch = with_old(Change::new(Kind::CheckDropped, &tt.name));
            ch.check = Some(c.clone());
            out.push(ch);
        }
    }
    for (c, k) in tt.checks.iter().zip(&tgt_chk) {
        if !cur_chk.contains(k) {
            let mut ch = with_old(Change::new(Kind::CheckAdded, &tt.name));
            ch.check = Some(c.clone());
            out.push(ch);
        }
    }
    for (old, new) in pair_by_key(&ct.checks, &cur_chk, &tt.checks, &tgt_chk, |c| c.name.clone()) {
        if let Some(mut ch) = renamed(Kind::ConstraintRenamed, &old.name, &new.name, &[]) {
            ch.check = Some(new.clone());
            out.push(ch);
        }
    }
    map
}

/// Kept objects (the same structural key on both sides), each current one with its target
/// counterpart: the one of the same name when there is one, else the first of that key whose name
/// no current object of the key has. Two objects of one key are paired one to one.
fn pair_by_key<'a, T, K: PartialEq>(
    cur: &'a [T],
    cur_keys: &[K],
    tgt: &'a [T],
    tgt_keys: &[K],
    name_of: impl Fn(&T) -> Option<String>,
) -> Vec<(&'a T, &'a T)> {
    let mut taken = vec![false; tgt.len()];
    let mut out = Vec::new();
    // Same names first, so a renamed twin does not take an unrenamed one's partner.
    let mut pending = Vec::new();
    for (c, ck) in cur.iter().zip(cur_keys) {
        let same = (0..tgt.len()).find(|&j| !taken[j] && &tgt_keys[j] == ck && name_of(&tgt[j]) == name_of(c));
        match same {
            Some(j) => taken[j] = true,
            None => pending.push((c, ck)),
        }
    }
    for (c, ck) in pending {
        let used_by_current =
            |j: usize| cur.iter().zip(cur_keys).any(|(o, ok)| ok == ck && name_of(o) == name_of(&tgt[j]));
        if let Some(j) = (0..tgt.len()).find(|&j| !taken[j] && &tgt_keys[j] == ck && !used_by_current(j)) {
            taken[j] = true;
            out.push((c, &tgt[j]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str) -> Column {
        Column { name: name.into(), data_type: ty.into(), nullable: true, ..Default::default() }
    }

    fn schema(cols: Vec<Column>) -> Schema {
        Schema {
            engine: "sqlite".into(),
            tables: vec![Table {
                name: "t".into(),
                columns: cols,
                primary_key: vec!["id".into()],
                ..Default::default()
            }],
        }
    }

    fn kinds(d: &Diff) -> Vec<(Kind, Option<String>)> {
        d.changes.iter().map(|c| (c.kind(), c.column.clone())).collect()
    }

    #[test]
    fn rename_is_inferred_when_one_column_of_same_family_swaps() {
        let cur = schema(vec![col("id", "integer"), col("name_l10n", "varchar(128)")]);
        let tgt = schema(vec![col("id", "integer"), col("local_name", "varchar(128)")]);
        let d = diff(&cur, &tgt, &Hints::default()).unwrap();
        assert_eq!(kinds(&d), vec![(Kind::ColumnRenamed, Some("local_name".into()))]);
        assert_eq!(d.kept["t"].columns["local_name"], "name_l10n");
    }

    #[test]
    fn names_that_mean_the_same_are_evidence_for_a_rename() {
        for (table, old, new) in [
            ("t", "userName", "user_name"),
            ("t", "name_first", "first_name"),
            ("t", "phone_no", "phone_number"),
            ("t", "cust_addr", "customer_address"),
            ("t", "qty", "quantity"),
            ("t", "colour", "color"),
            ("t", "centre", "center"),
            ("t", "organisation", "organization"),
            ("t", "adress", "address"),
            ("t", "categories", "category"),
            ("t", "name_l10n", "local_name"),
            ("t", "office", "office_id"),
            ("staff", "staff_name", "name"),
            ("t", "tel", "phone"),
            ("t", "desc", "description"),
            ("t", "Total Sum", "Grand Total"),
            ("t", "fax", "fax_number"),
            ("", "org_site", "gis_site"),
        ] {
            assert!(names_mean_the_same(table, old, new), "{old} -> {new} should count as the same name");
            assert!(names_mean_the_same(table, new, old), "{new} -> {old} should count as the same name");
        }
    }

    #[test]
    fn names_that_share_nothing_or_differ_in_meaning_are_no_evidence() {
        for (old, new) in [
            ("fax", "notes"),
            ("price", "cost"),
            ("created_at", "updated_at"),
            ("first_name", "last_name"),
            ("a1", "b1"),
            ("start_date", "end_date"),
            ("min_price", "max_price"),
            ("phone1", "phone2"),
            ("home_phone", "work_phone"),
            ("billing_address", "shipping_address"),
            ("height", "weight"),
            ("price", "prize"),
        ] {
            assert!(!names_mean_the_same("t", old, new), "{old} -> {new} must not count as the same name");
        }
    }

    #[test]
    fn a_same_type_pair_whose_names_share_nothing_is_asked_not_assumed() {
        let cur = schema(vec![col("id", "integer"), col("fax", "varchar(32)")]);
        let tgt = schema(vec![col("id", "integer"), col("notes", "varchar(32)")]);
        let d = diff(&cur, &tgt, &Hints::default()).unwrap();
        assert_eq!(kinds(&d), vec![(Kind::ColumnRenamed, Some("notes".into()))]);
        assert!(!d.changes[0].names_agree && !d.changes[0].hinted, "a question, not evidence");
        let e = crate::probe::Evidence::default();
        let f = crate::findings::judge(&d.changes[0], &e, &Hints::default());
        assert_eq!(f.verdict, crate::findings::Verdict::Human);
        assert!(f.message.starts_with("did you rename `t.fax` to `notes`?"), "{}", f.message);
    }

    #[test]
    fn two_same_type_columns_that_swapped_are_two_questions() {
        let cur = schema(vec![col("id", "integer"), col("width", "integer"), col("height", "integer")]);
        let tgt = schema(vec![col("id", "integer"), col("depth", "integer"), col("weight", "integer")]);
        let d = diff(&cur, &tgt, &Hints::default()).unwrap();
        for c in &d.changes {
            let f = crate::findings::judge(c, &crate::probe::Evidence::default(), &Hints::default());
            assert_ne!(f.verdict, crate::findings::Verdict::Auto, "{:?}: {}", c.kind(), f.message);
        }
    }

    #[test]
    fn a_no_to_a_rename_makes_it_a_drop_and_an_add() {
        let cur = schema(vec![col("id", "integer"), col("fax", "varchar(32)")]);
        let tgt = schema(vec![col("id", "integer"), col("notes", "varchar(32)")]);
        let mut h = Hints::default();
        h.not_renames.columns.insert("t.fax".into(), "notes".into());
        let d = diff(&cur, &tgt, &h).unwrap();
        assert_eq!(
            kinds(&d),
            vec![(Kind::ColumnDropped, Some("fax".into())), (Kind::ColumnAdded, Some("notes".into()))]
        );
        assert_eq!(d.changes[0].possible_rename, None, "the rejected pairing is not suggested again");
    }

    #[test]
    fn two_candidates_of_one_family_are_ambiguous_and_ranked_by_name() {
        let cur = schema(vec![col("id", "integer"), col("fname", "varchar(64)"), col("lname", "varchar(64)")]);
        let tgt = schema(vec![col("id", "integer"), col("first_name", "varchar(64)"), col("last_name", "varchar(64)")]);
        let d = diff(&cur, &tgt, &Hints::default()).unwrap();
        let added: Vec<_> = d.changes.iter().filter(|c| c.kind() == Kind::ColumnAdded).collect();
        assert_eq!(added.len(), 2);
        assert_eq!(added[0].candidates[0], "fname");
        assert_eq!(added[1].candidates[0], "lname");
    }

    #[test]
    fn a_lone_pair_with_a_narrower_type_another_name_and_place_is_not_a_rename() {
        // The demo's office table: fax varchar(32) went away, code varchar(16) came at another
        // place. Carrying fax numbers into office codes would be silent corruption.
        let cur = schema(vec![col("id", "integer"), col("phone", "varchar(32)"), col("fax", "varchar(32)")]);
        let tgt = schema(vec![col("id", "integer"), col("code", "varchar(16)"), col("phone", "varchar(32)")]);
        let d = diff(&cur, &tgt, &Hints::default()).unwrap();
        assert_eq!(
            kinds(&d),
            vec![(Kind::ColumnDropped, Some("fax".into())), (Kind::ColumnAdded, Some("code".into()))]
        );
        assert_eq!(d.changes[0].possible_rename.as_deref(), Some("code"));
    }

    #[test]
    fn a_column_of_another_family_is_not_taken_for_a_rename() {
        let cur = schema(vec![col("id", "integer"), col("fax", "varchar(32)")]);
        let tgt = schema(vec![col("id", "integer"), col("beds", "integer")]);
        let d = diff(&cur, &tgt, &Hints::default()).unwrap();
        assert_eq!(
            kinds(&d),
            vec![(Kind::ColumnDropped, Some("fax".into())), (Kind::ColumnAdded, Some("beds".into()))]
        );
    }

    #[test]
    fn hint_naming_a_missing_column_is_an_error() {
        let cur = schema(vec![col("id", "integer")]);
        let mut h = Hints::default();
        h.renames.columns.insert("t.nope".into(), "id".into());
        let e = diff(&cur, &cur, &h).unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn a_kept_index_or_constraint_under_another_name_is_renamed_and_unnamed_ones_are_not_compared() {
        let mut cur = schema(vec![col("id", "integer"), col("a", "text"), col("b", "text")]);
        let t = &mut cur.tables[0];
        t.indexes = vec![
            Index { name: "t_a".into(), columns: vec!["a".into()], ..Default::default() },
            Index { name: "t_b".into(), columns: vec!["b".into()], ..Default::default() },
        ];
        t.uniques = vec![Unique { name: Some("t_b_uq".into()), columns: vec!["b".into()] }];
        t.checks = vec![Check { name: None, expr: "a <> b".into(), sql: None }];
        let mut tgt = cur.clone();
        let t = &mut tgt.tables[0];
        t.indexes[0].name = "t_a_idx".into();
        t.uniques[0].name = Some("t_b_key".into());
        t.checks[0].name = Some("t_ab".into());
        let d = diff(&cur, &tgt, &Hints::default()).unwrap();
        let got: Vec<_> =
            d.changes.iter().map(|c| (c.kind(), c.old_name.clone().unwrap(), c.new_name.clone().unwrap())).collect();
        assert_eq!(
            got,
            vec![
                (Kind::ConstraintRenamed, "t_b_uq".into(), "t_b_key".into()),
                (Kind::IndexRenamed, "t_a".into(), "t_a_idx".into()),
            ],
            "the unnamed check has no name to compare"
        );
    }

    #[test]
    fn identical_schemas_have_no_changes() {
        let s = schema(vec![col("id", "integer"), col("a", "text")]);
        assert!(diff(&s, &s, &Hints::default()).unwrap().is_empty());
    }
}
