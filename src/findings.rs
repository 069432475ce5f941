//! Findings: each Change with a verdict (auto, lossy, human) and the evidence from the probes,
//! in words a sysadmin reads ("12 rows have NULL in `email`").
//!
//! The rules here are the seed workflow's heuristics (DESIGN.md), overridable by hints. A finding
//! is `auto` only when the data proves it safe. Beside each verdict: the measured figures it rests
//! on (`basis`), which the script re-checks with guards.

use crate::diff::{Change, Kind};
use crate::hints::Hints;
use crate::probe::{Evidence, Figure};
use crate::schema::Family;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Auto,
    Lossy,
    Human,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Auto => "auto",
            Verdict::Lossy => "lossy",
            Verdict::Human => "human",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable code (docs/codes.md), e.g. `RH202` for a dropped column.
    pub code: &'static str,
    /// The nearest Atlas and Squawk codes, so teams can map their habits.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub equivalents: Vec<&'static str>,
    pub kind: Kind,
    pub table: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub verdict: Verdict,
    pub evidence: Evidence,
    pub message: String,
    /// A lossy finding the hints accept (`accept_loss`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub accepted: bool,
    /// A rename's old name (`column_renamed`: the old column; `table_renamed`: the old table).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
    /// An ambiguous rename's candidates, most likely first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<String>,
    #[serde(skip)]
    pub change: Change,
    /// The measured figures the verdict rests on, each with what it counts in words
    /// (`NULL values in users.email`): the script's guards re-measure them (`rests_on`).
    #[serde(skip)]
    pub basis: Vec<(Figure, String)>,
}

fn q(s: &str) -> String {
    format!("`{s}`")
}

fn plural(n: i64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Samples are listed beside the message (report, script), not inside it.
fn samples_note(_e: &Evidence) -> String {
    String::new()
}

pub fn judge(ch: &Change, e: &Evidence, hints: &Hints) -> Finding {
    use Verdict::*;
    let col = ch.column.clone().unwrap_or_default();
    let key = format!("{}.{col}", ch.table);
    let rows = e.rows.unwrap_or(0);
    // With nothing measured (`rehearse diff`), a count is never printed: `fig` says what the
    // figure would count in words, and every verdict takes the worst the data could hold.
    let blind = e.nothing_measured;
    let fig =
        |n: i64, one: &str, many: &str, unknown: &str| if blind { unknown.to_string() } else { plural(n, one, many) };
    let why = e.unprobed.clone().unwrap_or_default();
    let (verdict, message, accepted) = match ch.kind() {
        Kind::TableAdded => (Auto, format!("new table {}, created empty", q(&ch.table)), false),
        Kind::TableDropped => {
            if rows == 0 && !blind {
                (Auto, format!("table {} is empty and is dropped", q(&ch.table)), false)
            } else {
                let ok = hints.accepts_loss(&ch.table, None);
                (
                    Lossy,
                    format!(
                        "dropping table {} loses {}; afterwards the backup in the workdir is the only copy{}",
                        q(&ch.table),
                        fig(rows, "row", "rows", "the rows it holds"),
                        if ok { " (loss accepted in hints)" } else { "; accept it with accept_loss or keep the table" }
                    ),
                    ok,
                )
            }
        }
        Kind::TableRenamed if ch.hinted || ch.names_agree => (
            Auto,
            format!(
                "table {} renamed to {}{}",
                q(ch.source_table()),
                q(&ch.table),
                if ch.hinted { " (hint)" } else { " (inferred: the same columns, and names that mean the same)" }
            ),
            false,
        ),
        Kind::TableRenamed => (
            Human,
            format!(
                "did you rename table {} to {}? They have the same columns, but the names do not say so, so its {} are not moved on a guess: answer with `rehearse hints` (or a renames or not_renames hint); the script drafts the rename",
                q(ch.source_table()),
                q(&ch.table),
                plural(rows, "row", "rows")
            ),
            false,
        ),
        Kind::TableSplit => {
            let parts = ch.parts.iter().map(|p| q(p)).collect::<Vec<_>>().join(", ");
            let lost = e.non_null.unwrap_or(0);
            if !ch.hinted {
                (
                    Human,
                    format!(
                        "table {} looks split into {parts} (they share its primary key and its columns): confirm with a split hint, or check the drafted INSERTs",
                        q(&ch.table)
                    ),
                    false,
                )
            } else if lost > 0 || (blind && !ch.columns.is_empty()) {
                let ok = hints.accepts_loss(&ch.table, None);
                (
                    Lossy,
                    format!(
                        "table {} is split into {parts}; columns {} are in none of them and lose {}",
                        q(&ch.table),
                        ch.columns.join(", "),
                        fig(lost, "value", "values", "their values")
                    ),
                    ok,
                )
            } else {
                (
                    Auto,
                    format!(
                        "table {} is split into {parts}: all {} are copied (split hint)",
                        q(&ch.table),
                        fig(rows, "row", "rows", "rows")
                    ),
                    false,
                )
            }
        }
        Kind::TableMerged => {
            let into = ch.parts.first().cloned().unwrap_or_default();
            let (on, key) = ch.join.clone().unwrap_or_default();
            let what = format!("table {} is merged into {} ({}.{on} = {into}.{key})", q(&ch.table), q(&into), ch.table);
            let dups = e.duplicate_groups.unwrap_or(0);
            let orphans = e.orphans.unwrap_or(0);
            let lost = e.non_null.unwrap_or(0);
            if !ch.hinted {
                (Human, format!("{what}: confirm with a merge hint, or check the drafted UPDATE"), false)
            } else if blind {
                (Human, format!("{what}: whether every row finds its place is not measured ({why})"), false)
            } else if dups > 0 {
                (
                    Human,
                    format!(
                        "{what}, but {} of {into} {} several {} rows: decide which one to keep",
                        plural(dups, "row", "rows"),
                        if dups == 1 { "has" } else { "have" },
                        ch.table
                    ),
                    false,
                )
            } else if orphans > 0 || lost > 0 {
                let ok = hints.accepts_loss(&ch.table, None);
                let mut why = Vec::new();
                if orphans > 0 {
                    why.push(format!("{} point at no {into} row", plural(orphans, "row", "rows")));
                }
                if lost > 0 {
                    why.push(format!("columns {} lose {}", ch.old_columns.join(", "), plural(lost, "value", "values")));
                }
                (Lossy, format!("{what}; {} and would be lost", why.join(" and ")), ok)
            } else {
                (Auto, format!("{what}: every row finds its place (merge hint)"), false)
            }
        }
        Kind::ColumnAdded => {
            let to = ch.to.clone().unwrap_or_default();
            if let Some(from) = &ch.merged_from {
                (Auto, format!("new column {} is filled from the merged table {}", q(&key), q(from)), false)
            } else if !ch.candidates.is_empty() {
                (
                    Human,
                    format!(
                        "ambiguous rename: {} may be the renamed {} (candidates: {}); confirm the drafted pairing or add a renames hint",
                        q(&key),
                        q(&ch.candidates[0]),
                        ch.candidates.join(", ")
                    ),
                    false,
                )
            } else if to.nullable || to.default.is_some() || to.auto_increment {
                (
                    Auto,
                    format!(
                        "new column {}{}",
                        q(&key),
                        to.default.map(|d| format!(" with default {d}")).unwrap_or_default()
                    ),
                    false,
                )
            } else if let Some(d) = hints.defaults.get(&key) {
                (
                    Auto,
                    format!(
                        "new NOT NULL column {}: {} get {d} (hint)",
                        q(&key),
                        fig(rows, "existing row", "existing rows", "existing rows")
                    ),
                    false,
                )
            } else if rows == 0 && !blind {
                (Auto, format!("new NOT NULL column {} on an empty table", q(&key)), false)
            } else {
                (
                    Human,
                    format!(
                        "new column {} is NOT NULL without a default and {} a value: add a defaults hint or write the backfill",
                        q(&key),
                        fig(rows, "existing row needs", "existing rows need", "every existing row needs")
                    ),
                    false,
                )
            }
        }
        Kind::ColumnDropped => {
            let lost = e.non_null.unwrap_or(0);
            if let Some(from) = &ch.merged_from {
                (Auto, format!("new column {} is filled from the merged table {}", q(&key), q(from)), false)
            } else if !ch.candidates.is_empty() {
                (
                    Human,
                    format!(
                        "ambiguous rename: {} may have become {} (candidates: {})",
                        q(&key),
                        q(&ch.candidates[0]),
                        ch.candidates.join(", ")
                    ),
                    false,
                )
            } else if lost == 0 && !blind {
                (Auto, format!("column {} is dropped; it holds no values", q(&key)), false)
            } else {
                let ok = hints.accepts_loss(&ch.table, Some(&col));
                (
                    Lossy,
                    format!(
                        "dropping column {} loses {}{}{}",
                        q(&key),
                        fig(lost, "value", "values", "the values it holds"),
                        match &ch.possible_rename {
                            Some(n) => format!(" (if it became {}, say so with a renames hint: the evidence was too weak to assume it)", q(n)),
                            None => String::new(),
                        },
                        if ok { " (loss accepted in hints)" } else { "; accept it with accept_loss or keep the column" }
                    ),
                    ok,
                )
            }
        }
        Kind::ColumnRenamed if ch.hinted || ch.names_agree => (
            Auto,
            format!(
                "column {} renamed to {}{}; the data is carried",
                q(&format!("{}.{}", ch.table, ch.old_column.clone().unwrap_or_default())),
                q(&col),
                if ch.hinted { " (hint)" } else { " (inferred: the names mean the same, and so do the types)" }
            ),
            false,
        ),
        Kind::ColumnRenamed => {
            let old = ch.old_column.clone().unwrap_or_default();
            let held = match e.non_null {
                Some(n) => format!("its {}", plural(n, "value", "values")),
                None => "its values".into(),
            };
            (
                Human,
                format!(
                    "did you rename {} to {}? The types say so, the names do not, so no data is moved on a guess: if yes, {} gets {held}; if not, {} is dropped with {held} and {} is new. Answer with `rehearse hints` (or a renames or not_renames hint); the script drafts both",
                    q(&format!("{}.{old}", ch.table)),
                    q(&col),
                    q(&col),
                    q(&old),
                    q(&col)
                ),
                false,
            )
        }
        Kind::ColumnTypeChanged if blind => {
            let (from, to) = (ch.from.clone().unwrap_or_default(), ch.to.clone().unwrap_or_default());
            let change = format!("{} changes type from {} to {}", q(&key), from.data_type, to.data_type);
            if crate::diff::widens(&from.data_type, &to.data_type) && !hints.values.contains_key(&key) {
                (Auto, format!("{change}: the new type holds every value of the old one"), false)
            } else {
                (Human, format!("{change}: whether every value converts is not measured ({why})"), false)
            }
        }
        Kind::ColumnTypeChanged => type_change(ch, e, hints, &key),
        Kind::ColumnNullabilityChanged => {
            let to_not_null = ch.to.as_ref().is_some_and(|c| !c.nullable);
            let nulls = e.nulls.unwrap_or(0);
            if !to_not_null {
                (Auto, format!("column {} now allows NULL", q(&key)), false)
            } else if nulls == 0 && !blind {
                (Auto, format!("column {} becomes NOT NULL; no row has NULL", q(&key)), false)
            } else if let Some(d) = hints.defaults.get(&key) {
                (
                    Auto,
                    format!(
                        "column {} becomes NOT NULL: {} backfilled with {d} (hint)",
                        q(&key),
                        fig(nulls, "NULL", "NULLs", "NULLs")
                    ),
                    false,
                )
            } else {
                (
                    Human,
                    format!(
                        "column {} becomes NOT NULL but {} NULL{}: add a defaults hint or write the backfill",
                        q(&key),
                        fig(nulls, "row has", "rows have", "rows may have"),
                        samples_note(e)
                    ),
                    false,
                )
            }
        }
        Kind::ColumnDefaultChanged => (
            Auto,
            format!(
                "default of {} changes from {} to {}",
                q(&key),
                ch.from.as_ref().map(|c| c.value_source()).unwrap_or_else(|| "none".into()),
                ch.to.as_ref().map(|c| c.value_source()).unwrap_or_else(|| "none".into())
            ),
            false,
        ),
        Kind::IndexAdded if !ch.adds_uniqueness() => {
            (Auto, format!("new index on {}({})", q(&ch.table), ch.columns.join(", ")), false)
        }
        Kind::PrimaryKeyChanged | Kind::UniqueAdded | Kind::IndexAdded => {
            let what = key_name(ch);
            let cols = ch.columns.join(", ");
            let dups = e.duplicate_groups.unwrap_or(0);
            let nulls = e.nulls.unwrap_or(0);
            if let Some(why) = &e.unprobed {
                (Human, format!("new {what} ({cols}) on {}: {why}", q(&ch.table)), false)
            } else if dups > 0 {
                (
                    Human,
                    format!(
                        "new {what} ({cols}) on {} would fail: {} of duplicate values{}{}; decide which rows to keep",
                        q(&ch.table),
                        plural(dups, "group", "groups"),
                        e.duplicate_rows
                            .map(|n| format!(" ({} beyond the first of its group)", plural(n, "row", "rows")))
                            .unwrap_or_default(),
                        samples_note(e)
                    ),
                    false,
                )
            } else if nulls > 0 {
                (
                    Human,
                    format!(
                        "new {what} ({cols}) on {}: {} NULL in a key column",
                        q(&ch.table),
                        plural(nulls, "row has", "rows have")
                    ),
                    false,
                )
            } else {
                (
                    Auto,
                    format!(
                        "new {what} ({cols}) on {}: no duplicates in {}",
                        q(&ch.table),
                        plural(rows, "row", "rows")
                    ),
                    false,
                )
            }
        }
        Kind::ForeignKeyAdded => {
            let fk = ch.foreign_key.clone().unwrap_or_default();
            let orphans = e.orphans.unwrap_or(0);
            let what =
                format!("{}({}) -> {}({})", ch.table, fk.columns.join(", "), fk.ref_table, fk.ref_columns.join(", "));
            if blind {
                (
                    Human,
                    format!("new foreign key {what}: whether every row has its parent is not measured ({why})"),
                    false,
                )
            } else if orphans > 0 {
                (
                    Human,
                    format!(
                        "new foreign key {what} would fail: {} point at missing rows{}; delete them, set them NULL or re-point them",
                        plural(orphans, "row", "rows"),
                        samples_note(e)
                    ),
                    false,
                )
            } else {
                (Auto, format!("new foreign key {what}: every row has its parent"), false)
            }
        }
        Kind::CheckAdded => {
            let expr = ch.check.as_ref().map(|c| c.expr.clone()).unwrap_or_default();
            match (e.violations, &e.unprobed) {
                (Some(0), _) => (Auto, format!("new check ({expr}) on {}: every row passes", q(&ch.table)), false),
                (Some(v), _) => (
                    Human,
                    format!("new check ({expr}) on {}: {} fail it", q(&ch.table), plural(v, "row would", "rows would")),
                    false,
                ),
                (None, why) => (
                    Human,
                    format!("new check ({expr}) on {}: {}", q(&ch.table), why.clone().unwrap_or_default()),
                    false,
                ),
            }
        }
        Kind::UniqueDropped => {
            (Auto, format!("unique key ({}) on {} is dropped", ch.columns.join(", "), q(&ch.table)), false)
        }
        Kind::IndexDropped => (
            Auto,
            format!(
                "index {} on {} is dropped",
                ch.index.as_ref().map(|i| i.name.clone()).unwrap_or_default(),
                q(&ch.table)
            ),
            false,
        ),
        Kind::ForeignKeyDropped => {
            (Auto, format!("foreign key {}({}) is dropped", ch.table, ch.columns.join(", ")), false)
        }
        Kind::IndexRenamed | Kind::ConstraintRenamed => {
            let what = match (&ch.index, &ch.unique, &ch.foreign_key, &ch.check) {
                (Some(_), ..) => "index".to_string(),
                (_, Some(_), ..) => format!("unique key ({})", ch.columns.join(", ")),
                (_, _, Some(fk), _) => {
                    format!("foreign key {}({}) -> {}", ch.table, ch.columns.join(", "), fk.ref_table)
                }
                (_, _, _, Some(c)) => format!("check ({})", c.expr),
                _ => format!("primary key ({})", ch.columns.join(", ")),
            };
            (
                Auto,
                format!(
                    "{what} {} on {} is renamed to {}, the new schema's name",
                    ch.old_name.clone().unwrap_or_default(),
                    q(&ch.table),
                    ch.new_name.clone().unwrap_or_default()
                ),
                false,
            )
        }
        Kind::CheckDropped => (
            Auto,
            format!(
                "check ({}) on {} is dropped",
                ch.check.as_ref().map(|c| c.expr.clone()).unwrap_or_default(),
                q(&ch.table)
            ),
            false,
        ),
    };
    let (code, equivalents) = code_of(ch);
    let basis = rests_on(ch, e, hints, verdict)
        .into_iter()
        .filter(|f| e.value(*f).is_some() && e.queries.contains_key(f))
        .map(|f| (f, figure_label(ch, f, e.value(f).unwrap_or(0), hints)))
        .collect();
    Finding {
        code,
        equivalents,
        kind: ch.kind(),
        table: ch.table.clone(),
        column: ch.column.clone(),
        verdict,
        evidence: e.clone(),
        message,
        accepted,
        renamed_from: match ch.kind() {
            Kind::ColumnRenamed => ch.old_column.clone(),
            Kind::TableRenamed => Some(ch.source_table().to_string()),
            _ => None,
        },
        candidates: ch.candidates.clone(),
        change: ch.clone(),
        basis,
    }
}

/// The figures a verdict rests on, which the script's guards re-measure before the step that
/// relies on them: a zero that made a finding auto (or kept it from worse), and every count a
/// decision for a human was written for (the TODO's draft, the sysadmin's edit). Not: a count a
/// hint settles whatever its size (a defaults backfill fills every NULL; an accepted loss is
/// accepted by name, and the archive keeps what it removes), a figure the verdict does not depend
/// on (an unconfirmed split or merge, an ambiguous rename), nor the size of a table a new NOT NULL
/// column needs a value for (the draft fills every row, however many).
fn rests_on(ch: &Change, e: &Evidence, hints: &Hints, verdict: Verdict) -> Vec<Figure> {
    use Figure::*;
    let zero = |f: Figure| e.value(f) == Some(0);
    let key = format!("{}.{}", ch.table, ch.column.as_deref().unwrap_or_default());
    let keep_zeros = |fs: &[Figure]| fs.iter().copied().filter(|f| zero(*f)).collect::<Vec<_>>();
    match ch.kind() {
        Kind::TableDropped => keep_zeros(&[Rows]),
        Kind::TableSplit if ch.hinted => keep_zeros(&[NonNull]),
        Kind::TableMerged if ch.hinted => {
            let mut v = vec![DuplicateGroups];
            v.extend(keep_zeros(&[Orphans, NonNull]));
            v
        }
        Kind::ColumnAdded => {
            let to = ch.to.clone().unwrap_or_default();
            let plain = ch.candidates.is_empty() && ch.merged_from.is_none();
            let needs_value = !to.nullable && to.default.is_none() && !to.auto_increment;
            if plain && needs_value && !hints.defaults.contains_key(&key) {
                keep_zeros(&[Rows])
            } else {
                vec![]
            }
        }
        Kind::ColumnDropped if ch.candidates.is_empty() && ch.merged_from.is_none() => keep_zeros(&[NonNull]),
        Kind::ColumnTypeChanged if hints.values.contains_key(&key) => vec![CastFailures, TooLong],
        Kind::ColumnTypeChanged => {
            let mut v = vec![TooLong, CastFailures];
            // Distinct values decide only when nothing is too long and everything converts.
            let settled = |f: Figure| e.value(f).is_none_or(|n| n == 0);
            if settled(TooLong) && settled(CastFailures) {
                v.push(Distinct);
            }
            v
        }
        Kind::ColumnNullabilityChanged if ch.to.as_ref().is_some_and(|c| !c.nullable) => {
            if zero(Nulls) || verdict == Verdict::Human {
                vec![Nulls]
            } else {
                vec![]
            }
        }
        _ if ch.adds_uniqueness() && e.unprobed.is_none() => vec![DuplicateGroups, Nulls],
        Kind::ForeignKeyAdded => vec![Orphans],
        Kind::CheckAdded => vec![Violations],
        _ => vec![],
    }
}

/// What a figure counts, in words that follow the count `n`, naming tables and columns as the
/// probe's query reads them (on the test copy as it was cloned): the text of a guard's marker and
/// of its failure ("12 NULL values in users.email").
fn figure_label(ch: &Change, figure: Figure, n: i64, hints: &Hints) -> String {
    let rows = if n == 1 { "row" } else { "rows" };
    let values = if n == 1 { "value" } else { "values" };
    let groups = if n == 1 { "duplicate group" } else { "duplicate groups" };
    let t = ch.source_table();
    let col = ch.old_column.as_deref().or(ch.column.as_deref()).unwrap_or_default();
    let tc = format!("{t}.{col}");
    let into = ch.parts.first().cloned().unwrap_or_default();
    let key = format!("{}.{}", ch.table, ch.column.as_deref().unwrap_or_default());
    let to = ch.to.clone().unwrap_or_default();
    match (ch.kind(), figure) {
        (_, Figure::Rows) => format!("{rows} in {t}"),
        (Kind::PrimaryKeyChanged, Figure::Nulls) => {
            format!("{rows} of {t} with a NULL in the new primary key ({})", ch.columns.join(", "))
        }
        (_, Figure::Nulls) => format!("NULL {values} in {tc}"),
        (Kind::TableSplit, Figure::NonNull) => {
            format!("{values} in the columns of {t} that no new table takes ({})", ch.columns.join(", "))
        }
        (Kind::TableMerged, Figure::NonNull) => {
            format!("{values} in the columns of {t} that {into} does not take ({})", ch.old_columns.join(", "))
        }
        (_, Figure::NonNull) => format!("non-NULL {values} in {tc}"),
        (_, Figure::Distinct) => format!("distinct {values} in {tc}"),
        (_, Figure::CastFailures) if hints.values.contains_key(&key) => {
            format!("{values} of {tc} that the value map does not cover")
        }
        (_, Figure::CastFailures) => {
            format!("{values} of {tc} that {} not convert to {}", if n == 1 { "does" } else { "do" }, to.data_type)
        }
        (_, Figure::TooLong) => format!("{values} of {tc} too long for {}", to.data_type),
        (Kind::TableMerged, Figure::DuplicateGroups) => format!("{rows} of {into} with several {t} rows"),
        (Kind::PrimaryKeyChanged, Figure::DuplicateGroups) => {
            format!("{groups} for the new primary key ({}) of {t}", ch.columns.join(", "))
        }
        (_, Figure::DuplicateGroups) => {
            format!("{groups} for the new {} ({}) of {t}", key_name(ch), ch.columns.join(", "))
        }
        (Kind::TableMerged, Figure::Orphans) => format!("{rows} of {t} that point at no {into} row"),
        (_, Figure::Orphans) => {
            let fk = ch.foreign_key.clone().unwrap_or_default();
            format!(
                "{rows} of {t} whose ({}) {} at no {} row (new foreign key)",
                fk.columns.join(", "),
                if n == 1 { "points" } else { "point" },
                fk.ref_table
            )
        }
        (_, Figure::Violations) => format!(
            "{rows} of {t} that fail the new check ({})",
            ch.check.as_ref().map(|c| c.expr.clone()).unwrap_or_default()
        ),
    }
}

/// Whether `judge` gives `verdict` for some value of the figures `e` could not measure (each taken
/// as none or some): a figure nobody measured is never a verdict change.
pub fn could_be(ch: &Change, e: &Evidence, hints: &Hints, verdict: Verdict) -> bool {
    let n = e.unmeasured.len().min(8);
    (0u32..1 << n).any(|mask| {
        let mut guess = e.clone();
        for (k, (figure, _)) in e.unmeasured.iter().take(n).enumerate() {
            guess.set(*figure, Some(i64::from(mask >> k & 1)));
        }
        judge(ch, &guess, hints).verdict == verdict
    })
}

/// What a new uniqueness is called in messages: `unique key`, `primary key`, or `unique index
/// NAME` (with `where PREDICATE` for a partial one).
fn key_name(ch: &Change) -> String {
    match (ch.kind(), &ch.index) {
        (Kind::PrimaryKeyChanged, _) => "primary key".into(),
        (Kind::IndexAdded, Some(i)) => format!(
            "unique index {}{}",
            i.name,
            i.predicate.as_ref().map(|p| format!(" where {p}")).unwrap_or_default()
        ),
        _ => "unique key".into(),
    }
}

fn type_change(ch: &Change, e: &Evidence, hints: &Hints, key: &str) -> (Verdict, String, bool) {
    use Verdict::*;
    let (from, to) = (ch.from.clone().unwrap_or_default(), ch.to.clone().unwrap_or_default());
    let change = format!("{} changes type from {} to {}", q(key), from.data_type, to.data_type);
    let fails = e.cast_failures.unwrap_or(0);
    let long = e.too_long.unwrap_or(0);
    let distinct = e.distinct.unwrap_or(0);
    if hints.values.contains_key(key) {
        return if fails == 0 && long == 0 {
            (Auto, format!("{change}: the value map covers every live value"), false)
        } else {
            (
                Human,
                format!(
                    "{change}: {} not covered by the value map{}",
                    plural(fails, "value is", "values are"),
                    samples_note(e)
                ),
                false,
            )
        };
    }
    if long > 0 {
        return (
            Human,
            format!(
                "{change}: {} longer than the new limit{}; shorten them or keep the old length",
                plural(long, "value is", "values are"),
                samples_note(e)
            ),
            false,
        );
    }
    if fails > 0 {
        return (
            Human,
            format!(
                "{change}: {} will not convert{}; clean them up or give a value map",
                plural(fails, "value", "values"),
                samples_note(e)
            ),
            false,
        );
    }
    let (ff, tf) = (Family::of(&from.data_type), Family::of(&to.data_type));
    let coded = matches!(ff, Family::Integer | Family::Decimal | Family::Float | Family::Boolean);
    if tf == Family::Text && coded && distinct > 0 {
        return (
            Human,
            format!(
                "{change}: {} distinct values would be stored as their digits{}; if they are codes, give a value map (values hint)",
                distinct,
                samples_note(e)
            ),
            false,
        );
    }
    (Auto, format!("{change}: every value converts"), false)
}

/// The stable code of a change, and its Atlas / Squawk equivalents where one exists.
pub fn code_of(ch: &Change) -> (&'static str, Vec<&'static str>) {
    let not_null_add = ch.to.as_ref().is_some_and(|c| !c.nullable && c.default.is_none());
    match ch.kind() {
        Kind::TableAdded => ("RH101", vec![]),
        Kind::TableDropped => ("RH102", vec!["atlas:DS102", "squawk:ban-drop-table"]),
        Kind::TableRenamed => ("RH103", vec!["atlas:BC101", "squawk:renaming-table"]),
        Kind::TableSplit => ("RH104", vec![]),
        Kind::TableMerged => ("RH105", vec![]),
        Kind::ColumnAdded if not_null_add => ("RH201", vec!["atlas:MF103", "squawk:adding-required-field"]),
        Kind::ColumnAdded => ("RH201", vec![]),
        Kind::ColumnDropped => ("RH202", vec!["atlas:DS103", "squawk:ban-drop-column"]),
        Kind::ColumnRenamed => ("RH203", vec!["atlas:BC102", "squawk:renaming-column"]),
        Kind::ColumnTypeChanged => ("RH204", vec!["squawk:changing-column-type"]),
        Kind::ColumnNullabilityChanged if ch.to.as_ref().is_some_and(|c| !c.nullable) => {
            ("RH205", vec!["atlas:MF104", "squawk:adding-not-nullable-field"])
        }
        Kind::ColumnNullabilityChanged => ("RH205", vec![]),
        Kind::ColumnDefaultChanged => ("RH206", vec![]),
        Kind::PrimaryKeyChanged => ("RH301", vec![]),
        Kind::UniqueAdded => ("RH302", vec!["atlas:MF101", "squawk:disallowed-unique-constraint"]),
        Kind::UniqueDropped => ("RH303", vec!["atlas:CD101"]),
        Kind::IndexAdded => ("RH304", vec!["squawk:require-concurrent-index-creation"]),
        Kind::IndexDropped => ("RH305", vec![]),
        Kind::ForeignKeyAdded => ("RH306", vec!["squawk:adding-foreign-key-constraint"]),
        Kind::ForeignKeyDropped => ("RH307", vec!["atlas:CD101"]),
        Kind::CheckAdded => ("RH308", vec!["squawk:constraint-missing-not-valid"]),
        Kind::CheckDropped => ("RH309", vec!["atlas:CD101"]),
        Kind::IndexRenamed => ("RH310", vec![]),
        Kind::ConstraintRenamed => ("RH311", vec![]),
    }
}

/// The overall verdict: the worst of all findings.
pub fn overall(findings: &[Finding]) -> Verdict {
    findings.iter().map(|f| f.verdict).max().unwrap_or(Verdict::Auto)
}

/// Whether the script may run: nothing for a human, and every loss accepted.
pub fn runnable(findings: &[Finding]) -> bool {
    findings.iter().all(|f| f.verdict == Verdict::Auto || (f.verdict == Verdict::Lossy && f.accepted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Column;

    fn not_null(table: &str, column: &str) -> Change {
        Change {
            kind: Some(Kind::ColumnNullabilityChanged),
            table: table.into(),
            column: Some(column.into()),
            from: Some(Column { name: column.into(), nullable: true, ..Default::default() }),
            to: Some(Column { name: column.into(), nullable: false, ..Default::default() }),
            ..Default::default()
        }
    }

    /// Evidence with these figures, each measured by a query of its own.
    fn measured(figures: &[(Figure, i64)]) -> Evidence {
        let mut e = Evidence::default();
        for (f, v) in figures {
            e.set(*f, Some(*v));
            e.queries.insert(*f, format!("SELECT {v}"));
        }
        e
    }

    #[test]
    fn a_zero_that_made_a_change_automatic_and_a_count_left_to_a_human_are_what_the_verdict_rests_on() {
        let f =
            judge(&not_null("users", "email"), &measured(&[(Figure::Rows, 40), (Figure::Nulls, 0)]), &Hints::default());
        assert_eq!(f.verdict, Verdict::Auto);
        assert_eq!(f.basis, [(Figure::Nulls, "NULL values in users.email".to_string())]);
        let f =
            judge(&not_null("users", "email"), &measured(&[(Figure::Rows, 40), (Figure::Nulls, 1)]), &Hints::default());
        assert_eq!(f.verdict, Verdict::Human);
        assert_eq!(f.basis, [(Figure::Nulls, "NULL value in users.email".to_string())], "the count a TODO is for");
    }

    #[test]
    fn a_count_a_hint_settles_whatever_its_size_is_not_guarded() {
        let mut hints = Hints::default();
        hints.defaults.insert("users.email".into(), "'x'".into());
        let f = judge(&not_null("users", "email"), &measured(&[(Figure::Nulls, 12)]), &hints);
        assert_eq!(f.verdict, Verdict::Auto);
        assert!(f.basis.is_empty(), "{:?}", f.basis);
        // A loss accepted by name: not its size; a drop that loses nothing: its zero.
        let drop = Change {
            kind: Some(Kind::ColumnDropped),
            table: "t".into(),
            column: Some("c".into()),
            ..Default::default()
        };
        hints.accept_loss.push("t.c".into());
        let f = judge(&drop, &measured(&[(Figure::NonNull, 7)]), &hints);
        assert_eq!((f.verdict, f.basis.len()), (Verdict::Lossy, 0));
        let f = judge(&drop, &measured(&[(Figure::NonNull, 0)]), &hints);
        assert_eq!(f.basis, [(Figure::NonNull, "non-NULL values in t.c".to_string())]);
    }

    #[test]
    fn with_nothing_measured_no_message_names_a_count_and_the_verdict_assumes_the_worst() {
        let why = "no data was probed";
        let e = Evidence::not_measured(why);
        let add = Change {
            kind: Some(Kind::ColumnAdded),
            table: "t".into(),
            column: Some("c".into()),
            to: Some(Column { name: "c".into(), data_type: "text".into(), nullable: false, ..Default::default() }),
            ..Default::default()
        };
        let drop = Change { kind: Some(Kind::ColumnDropped), column: Some("d".into()), ..add.clone() };
        let narrow = Change {
            kind: Some(Kind::ColumnTypeChanged),
            from: Some(Column { name: "c".into(), data_type: "bigint".into(), ..Default::default() }),
            to: Some(Column { name: "c".into(), data_type: "smallint".into(), ..Default::default() }),
            ..add.clone()
        };
        let fk = Change { kind: Some(Kind::ForeignKeyAdded), ..add.clone() };
        let table = Change { kind: Some(Kind::TableDropped), ..Default::default() };
        for (ch, verdict) in [
            (&add, Verdict::Human),
            (&drop, Verdict::Lossy),
            (&not_null("t", "c"), Verdict::Human),
            (&narrow, Verdict::Human),
            (&fk, Verdict::Human),
            (&table, Verdict::Lossy),
        ] {
            let f = judge(ch, &e, &Hints::default());
            assert_eq!(f.verdict, verdict, "{}", f.message);
            assert!(!f.message.chars().any(|c| c.is_ascii_digit()), "a count nobody measured: {}", f.message);
            assert!(f.basis.is_empty(), "{:?}", f.basis);
            let json = serde_json::to_value(&f.evidence).unwrap();
            assert_eq!(json, serde_json::json!({ "unprobed": why }), "{}", f.message);
        }
    }

    #[test]
    fn a_figure_reasoned_out_rather_than_counted_by_its_own_query_is_not_guarded() {
        let unique = Change {
            kind: Some(Kind::UniqueAdded),
            table: "t".into(),
            columns: vec!["id2".into()],
            ..Default::default()
        };
        let e = Evidence { duplicate_groups: Some(0), ..Default::default() }; // a new identity column
        let f = judge(&unique, &e, &Hints::default());
        assert_eq!(f.verdict, Verdict::Auto);
        assert!(f.basis.is_empty(), "{:?}", f.basis);
        let f = judge(&unique, &measured(&[(Figure::DuplicateGroups, 3)]), &Hints::default());
        assert_eq!(
            f.basis,
            [(Figure::DuplicateGroups, "duplicate groups for the new unique key (id2) of t".to_string())]
        );
    }

    #[test]
    fn a_new_unique_index_is_judged_and_guarded_like_a_unique_key_and_a_plain_one_is_not() {
        let index = |unique: bool| Change {
            kind: Some(Kind::IndexAdded),
            table: "t".into(),
            columns: vec!["email".into()],
            index: Some(crate::schema::Index {
                name: "t_email".into(),
                columns: vec!["email".into()],
                unique,
                predicate: Some("active = 1".into()),
                sql: None,
            }),
            ..Default::default()
        };
        let dups = measured(&[(Figure::DuplicateGroups, 2)]);
        let f = judge(&index(true), &dups, &Hints::default());
        assert_eq!(f.verdict, Verdict::Human);
        assert!(f.message.contains("unique index t_email where active = 1"), "{}", f.message);
        assert_eq!(
            f.basis,
            [(
                Figure::DuplicateGroups,
                "duplicate groups for the new unique index t_email where active = 1 (email) of t".to_string()
            )]
        );
        let f = judge(&index(true), &measured(&[(Figure::DuplicateGroups, 0)]), &Hints::default());
        assert_eq!((f.verdict, f.basis.len()), (Verdict::Auto, 1), "the zero is guarded");
        let f = judge(&index(false), &dups, &Hints::default());
        assert_eq!((f.verdict, f.basis.len()), (Verdict::Auto, 0));
    }
}
