//! Probes: read-only queries on the test copy that measure what each change will meet in the data.
//! All counting probes of one table are folded into a single aggregate scan; duplicate groups,
//! orphans and samples need their own (small) queries, run only when they matter.
//!
//! Probes never write, and never run on live during a rehearsal.

use crate::diff::{Change, Diff, Kind};
use crate::engine::{Connection, Dialect};
use crate::hints::Hints;
use crate::schema::{char_limit, Family, Schema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Evidence {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nulls: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub non_null: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cast_failures: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub too_long: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_groups: Option<i64>,
    /// Rows beyond the first of their duplicate group: what a de-duplication that keeps one row
    /// per group deletes (or clears).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_rows: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orphans: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violations: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_sql: Option<String>,
    /// Why a figure could not be measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unprobed: Option<String>,
    /// The query that measures each figure by itself, on the test copy as it was probed (an
    /// aggregate figure's own expression over its table): the script's guards re-run it. A figure
    /// that was reasoned out rather than counted, or counted with a session helper a script does
    /// not have, has none.
    #[serde(skip)]
    pub queries: BTreeMap<Figure, String>,
    /// Figures this probe could not measure here, and why (PostgreSQL before 16: a cast on live,
    /// whose read-only session cannot create the helper). Unknown, not zero: a verdict resting on
    /// one is not compared (`findings::could_be`).
    #[serde(skip)]
    pub unmeasured: Vec<(Figure, String)>,
    /// A type change: the SQL condition, over the current column, true for a non-NULL value that
    /// converts, when a script can evaluate it (no session helper): what a clean-up draft uses.
    #[serde(skip)]
    pub converts: Option<String>,
    /// Nothing was measured (`rehearse diff` probes no data): every figure is absent, and a verdict
    /// assumes the worst the data could bring without a message ever naming a count.
    #[serde(skip)]
    pub nothing_measured: bool,
}

/// A figure an engine cannot measure on this connection (a `castable` error): the probe records
/// it as unmeasured instead of failing or guessing.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unmeasurable(pub String);

/// One figure of the evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Figure {
    Rows,
    Nulls,
    NonNull,
    Distinct,
    CastFailures,
    TooLong,
    DuplicateGroups,
    Orphans,
    Violations,
}

impl Evidence {
    /// Evidence for a change nobody measured: no figure at all, and why (`unprobed`).
    pub fn not_measured(why: &str) -> Evidence {
        Evidence { unprobed: Some(why.to_string()), nothing_measured: true, ..Default::default() }
    }

    pub fn value(&self, figure: Figure) -> Option<i64> {
        match figure {
            Figure::Rows => self.rows,
            Figure::Nulls => self.nulls,
            Figure::NonNull => self.non_null,
            Figure::Distinct => self.distinct,
            Figure::CastFailures => self.cast_failures,
            Figure::TooLong => self.too_long,
            Figure::DuplicateGroups => self.duplicate_groups,
            Figure::Orphans => self.orphans,
            Figure::Violations => self.violations,
        }
    }

    /// Set one figure (the aggregate scan fills them by position).
    pub fn set(&mut self, figure: Figure, v: Option<i64>) {
        let slot = match figure {
            Figure::Rows => &mut self.rows,
            Figure::Nulls => &mut self.nulls,
            Figure::NonNull => &mut self.non_null,
            Figure::Distinct => &mut self.distinct,
            Figure::CastFailures => &mut self.cast_failures,
            Figure::TooLong => &mut self.too_long,
            Figure::DuplicateGroups => &mut self.duplicate_groups,
            Figure::Orphans => &mut self.orphans,
            Figure::Violations => &mut self.violations,
        };
        *slot = v;
    }
}

/// A count as a probe reads it from the database's text: NULL is 0 (`sum` over no rows), a
/// decimal is truncated (MySQL's `sum` is DECIMAL); None when it is no number at all.
pub fn figure_value(text: Option<&str>) -> Option<i64> {
    match text {
        None => Some(0),
        Some(t) => t.trim().parse::<f64>().ok().map(|f| f as i64),
    }
}

struct Aggregates {
    exprs: Vec<String>,
    targets: Vec<(usize, Figure)>,
}

/// The context a probe needs about the change it measures.
/// From this many rows on, samples are the first found rather than the most telling (see
/// `probe_one`): probing stays close to one scan of the table.
const LARGE_TABLE: i64 = 100_000;

pub struct Prober<'a> {
    pub conn: &'a mut dyn Connection,
    pub dialect: Dialect,
    pub current: &'a Schema,
    pub hints: &'a Hints,
    pub samples: usize,
}

impl Prober<'_> {
    fn q(&self, ident: &str) -> String {
        self.dialect.quote(ident)
    }

    /// Measure every change; evidence is returned in the order of `diff.changes`.
    pub fn probe(&mut self, diff: &Diff) -> anyhow::Result<Vec<Evidence>> {
        // PostgreSQL counts distinct values in memory up to work_mem (4 MB by default), on disk
        // beyond: more for the probes only, so the script's run is timed with the server's own.
        if self.dialect != Dialect::Postgres {
            return self.probe_all(diff);
        }
        self.conn.execute_batch("SET work_mem = '64MB'")?;
        let result = self.probe_all(diff);
        let reset = self.conn.execute_batch("RESET work_mem");
        let evidence = result?; // the probe's own error first
        reset?;
        Ok(evidence)
    }

    fn probe_all(&mut self, diff: &Diff) -> anyhow::Result<Vec<Evidence>> {
        let mut ev: Vec<Evidence> = vec![Evidence::default(); diff.changes.len()];
        // One aggregate scan per current table.
        let mut per_table: BTreeMap<String, Aggregates> = BTreeMap::new();
        // Changes whose cast check needs this session's helper: no query a script could re-run.
        let mut session_bound: Vec<usize> = Vec::new();
        let mut unmeasured: Vec<(usize, Figure, String)> = Vec::new();
        for (i, ch) in diff.changes.iter().enumerate() {
            let src = ch.source_table().to_string();
            if self.current.table(&src).is_none() {
                continue; // a new table: nothing to measure
            }
            let agg = per_table
                .entry(src.clone())
                .or_insert_with(|| Aggregates { exprs: vec!["count(*)".into()], targets: vec![] });
            let old_col = ch.old_column.clone().or(ch.column.clone());
            let col_sql = old_col.as_deref().map(|c| self.q(c));
            let mut add = |expr: String, field: Figure| {
                agg.exprs.push(expr);
                agg.targets.push((i, field));
            };
            match ch.kind() {
                Kind::ColumnDropped => {
                    if let Some(c) = &col_sql {
                        add(format!("count({c})"), Figure::NonNull);
                    }
                }
                Kind::TableSplit | Kind::TableMerged => {
                    // Values of columns that no new table carries.
                    let lost = if ch.kind() == Kind::TableSplit { &ch.columns } else { &ch.old_columns };
                    if !lost.is_empty() {
                        let sum: Vec<String> = lost.iter().map(|c| format!("count({})", self.q(c))).collect();
                        add(sum.join(" + "), Figure::NonNull);
                    }
                }
                // A rename only a human can confirm: what the other answer (a drop) would lose.
                Kind::ColumnRenamed if !ch.hinted && !ch.names_agree => {
                    if let Some(c) = &col_sql {
                        add(format!("count({c})"), Figure::NonNull);
                    }
                }
                Kind::ColumnAdded if !ch.candidates.is_empty() => {
                    add(format!("count({})", self.q(&ch.candidates[0])), Figure::NonNull);
                }
                Kind::ColumnNullabilityChanged => {
                    if let Some(c) = &col_sql {
                        add(format!("count(*) - count({c})"), Figure::Nulls);
                    }
                }
                Kind::ColumnTypeChanged => {
                    let (Some(c), Some(from), Some(to)) = (&col_sql, &ch.from, &ch.to) else {
                        continue;
                    };
                    // Distinct values cost a sort: only numbers or booleans becoming text need them
                    // (codes that may want a value map).
                    let coded = matches!(
                        Family::of(&from.data_type),
                        Family::Integer | Family::Decimal | Family::Float | Family::Boolean
                    );
                    if coded && Family::of(&to.data_type) == Family::Text {
                        add(format!("count(DISTINCT {c})"), Figure::Distinct);
                    }
                    add(format!("count(*) - count({c})"), Figure::Nulls);
                    let cond = match self.failure_condition(ch, c) {
                        Err(e) if e.is::<Unmeasurable>() => {
                            unmeasured.push((i, Figure::CastFailures, e.to_string()));
                            None
                        }
                        other => other?,
                    };
                    if let Some(cond) = cond {
                        if self.conn.session_bound(&cond) {
                            session_bound.push(i);
                        } else {
                            ev[i].converts = Some(cond.clone());
                        }
                        add(
                            format!("sum(CASE WHEN {c} IS NOT NULL AND NOT ({cond}) THEN 1 ELSE 0 END)"),
                            Figure::CastFailures,
                        );
                    }
                    if let Some(limit) = char_limit(&to.data_type) {
                        if char_limit(&from.data_type).is_none_or(|l| l > limit) {
                            let len = self.conn.char_length(&self.conn.as_text(c));
                            add(format!("sum(CASE WHEN {len} > {limit} THEN 1 ELSE 0 END)"), Figure::TooLong);
                        }
                    }
                }
                _ => {}
            }
        }
        for (table, agg) in &per_table {
            let sql = format!("SELECT {} FROM {}", agg.exprs.join(", "), self.q(table));
            let row = self.conn.query(&sql)?.into_iter().next().unwrap_or_default();
            let num = |k: usize| figure_value(row.get(k).cloned().flatten().as_deref()).unwrap_or(0);
            let rows = num(0);
            let alone = |expr: &str| format!("SELECT {expr} FROM {}", self.q(table));
            for (i, ch) in diff.changes.iter().enumerate() {
                if ch.source_table() == table {
                    ev[i].rows = Some(rows);
                    ev[i].probe_sql = Some(sql.clone());
                    ev[i].queries.insert(Figure::Rows, alone("count(*)"));
                }
            }
            for (k, (i, figure)) in agg.targets.iter().enumerate() {
                let e = &mut ev[*i];
                e.set(*figure, Some(num(k + 1)));
                if !(*figure == Figure::CastFailures && session_bound.contains(i)) {
                    e.queries.insert(*figure, alone(&agg.exprs[k + 1]));
                }
            }
        }
        for (i, figure, why) in unmeasured {
            ev[i].unmeasured.push((figure, why));
        }
        for (i, ch) in diff.changes.iter().enumerate() {
            if ch.kind() == Kind::TableAdded {
                ev[i].rows = Some(0);
            }
            self.probe_one(diff, ch, &mut ev[i])?;
        }
        Ok(ev)
    }

    /// The same probes, for `--live`'s drift check on live itself: every probe is a plain SELECT
    /// (an engine whose cast check needs a session helper must fall back to a read-only form).
    pub fn probe_read_only(&mut self, diff: &Diff) -> anyhow::Result<Vec<Evidence>> {
        self.probe(diff)
    }

    /// A SQL condition true when a non-NULL value of `c` survives the type change.
    fn failure_condition(&mut self, ch: &Change, c: &str) -> anyhow::Result<Option<String>> {
        let (Some(from), Some(to)) = (ch.from.as_ref(), ch.to.as_ref()) else { return Ok(None) };
        let key = format!("{}.{}", ch.table, ch.column.as_deref().unwrap_or(""));
        if let Some(map) = self.hints.values.get(&key) {
            let keys: Vec<String> = map.keys().map(|k| self.dialect.literal(k)).collect();
            return Ok(Some(format!("{} IN ({})", self.conn.as_text(c), keys.join(", "))));
        }
        self.conn.castable(c, &from.data_type, &to.data_type)
    }

    fn sample(&mut self, sql: &str) -> anyhow::Result<Vec<String>> {
        if self.samples == 0 {
            return Ok(vec![]);
        }
        let rows = self.conn.query(sql)?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let vals: Vec<String> = r
                    .iter()
                    .take(r.len().saturating_sub(1).max(1))
                    .map(|v| v.clone().unwrap_or_else(|| "NULL".into()))
                    .collect();
                let count = if r.len() > 1 { r.last().cloned().flatten() } else { None };
                match count {
                    Some(n) if n == "1" => format!("{} (1 row)", vals.join(", ")),
                    Some(n) => format!("{} ({n} rows)", vals.join(", ")),
                    None => vals.join(", "),
                }
            })
            // A query that stops early may repeat a value: each is shown once, at most `samples`.
            .fold(Vec::new(), |mut seen: Vec<String>, s| {
                if !seen.contains(&s) && seen.len() < self.samples {
                    seen.push(s);
                }
                seen
            }))
    }

    /// Probes that need their own query, and samples for non-zero figures.
    fn probe_one(&mut self, diff: &Diff, ch: &Change, e: &mut Evidence) -> anyhow::Result<()> {
        let src = ch.source_table().to_string();
        let Some(ct) = self.current.table(&src).cloned() else {
            return Ok(());
        };
        let t = self.q(&src);
        let n = self.samples;
        let map = diff.kept.get(&ch.table);
        let old = |c: &str| map.and_then(|m| m.columns.get(c)).cloned();
        match ch.kind() {
            Kind::ColumnTypeChanged => {
                let c = self.q(ch.old_column.as_deref().or(ch.column.as_deref()).unwrap_or(""));
                let txt = self.conn.as_text(&c);
                // On a large table the samples are the first ones found (a query that stops
                // early), not the most frequent or the longest (a second full scan and a sort).
                let large = e.rows.unwrap_or(0) >= LARGE_TABLE;
                if e.cast_failures.unwrap_or(0) > 0 {
                    let cond = self.failure_condition(ch, &c)?.unwrap_or_else(|| "1=1".into());
                    let sql = if large {
                        format!("SELECT {txt} FROM {t} WHERE {c} IS NOT NULL AND NOT ({cond}) LIMIT {}", n * 4)
                    } else {
                        format!("SELECT {txt}, count(*) FROM {t} WHERE {c} IS NOT NULL AND NOT ({cond}) GROUP BY {txt} ORDER BY count(*) DESC, {txt} LIMIT {n}")
                    };
                    e.samples = self.sample(&sql)?;
                } else if e.too_long.unwrap_or(0) > 0 {
                    let len = self.conn.char_length(&txt);
                    let sql = match char_limit(&ch.to.as_ref().map(|c| c.data_type.clone()).unwrap_or_default()) {
                        Some(limit) if large => format!("SELECT {txt} FROM {t} WHERE {len} > {limit} LIMIT {n}"),
                        _ => {
                            format!("SELECT {txt} FROM {t} WHERE {c} IS NOT NULL ORDER BY {len} DESC, {txt} LIMIT {n}")
                        }
                    };
                    e.samples = self.sample(&sql)?;
                } else if e.distinct.unwrap_or(0) > 0 {
                    e.samples = self.sample(&format!(
                        "SELECT {txt}, count(*) FROM {t} WHERE {c} IS NOT NULL GROUP BY {txt} ORDER BY count(*) DESC, {txt} LIMIT {n}"
                    ))?;
                }
            }
            Kind::ColumnNullabilityChanged if e.nulls.unwrap_or(0) > 0 => {
                let pk: Vec<String> = ct.primary_key.iter().map(|c| self.q(c)).collect();
                let c = self.q(ch.old_column.as_deref().or(ch.column.as_deref()).unwrap_or(""));
                if !pk.is_empty() {
                    e.samples = self
                        .sample(&format!("SELECT {} FROM {t} WHERE {c} IS NULL LIMIT {n}", pk.join(", ")))?
                        .into_iter()
                        .map(|s| format!("{} = {s}", ct.primary_key.join(", ")))
                        .collect();
                }
            }
            Kind::ColumnDropped if e.non_null.unwrap_or(0) > 0 => {
                let c = self.q(ch.column.as_deref().unwrap_or(""));
                let txt = self.conn.as_text(&c);
                // DISTINCT reads the whole column before the first row comes back; on a large
                // table the first values found, told apart here, are enough.
                let sql = if e.rows.unwrap_or(0) >= LARGE_TABLE {
                    format!("SELECT {txt} FROM {t} WHERE {c} IS NOT NULL LIMIT {}", n * 4)
                } else {
                    format!("SELECT DISTINCT {txt} FROM {t} WHERE {c} IS NOT NULL LIMIT {n}")
                };
                e.samples = self.sample(&sql)?;
            }
            _ if ch.adds_uniqueness() => {
                // A new key column holds, in every existing row, NULL (never a duplicate in a
                // unique key), a value of its own (identity, serial) or one constant (no
                // difference between rows: the other columns decide). Anything else is unknown.
                let added = |name: &str| {
                    diff.changes
                        .iter()
                        .find(|a| {
                            a.kind() == Kind::ColumnAdded && a.table == ch.table && a.column.as_deref() == Some(name)
                        })
                        .and_then(|a| a.to.clone())
                };
                let is_pk = ch.kind() == Kind::PrimaryKeyChanged;
                // A unique index's expressions and predicate are written in the target's column
                // names: they read the table through its kept columns under those names.
                let pred = ch.key_predicate();
                let mut exprs = false;
                let mut olds = Vec::new();
                let mut keys: Vec<(String, String)> = Vec::new(); // (current name or expression, target's)
                for c in &ch.columns {
                    if c == "<expr>" {
                        e.unprobed = Some(
                            "a key of the index is an expression the engine does not show, so the live data cannot be checked for duplicates"
                                .into(),
                        );
                        return Ok(());
                    }
                    if let Some(o) = old(c) {
                        olds.push(o.clone());
                        keys.push((o, c.clone()));
                        continue;
                    }
                    let Some(col) = added(c) else {
                        exprs = true; // neither a kept nor a new column: an expression
                        keys.push((c.clone(), c.clone()));
                        continue;
                    };
                    let distinct_per_row = col.auto_increment || (!is_pk && col.nullable && col.default.is_none());
                    if distinct_per_row {
                        e.duplicate_groups = Some(0);
                        return Ok(());
                    }
                    if !col.default.as_deref().is_some_and(is_constant) {
                        let rows = self.count(&format!("SELECT count(*) FROM {t}"))?;
                        if rows > 0 {
                            e.unprobed = Some(
                                "a column of the key is new and its value per row is unknown, so the live data cannot be checked for duplicates"
                                    .into(),
                            );
                        } else {
                            e.duplicate_groups = Some(0);
                        }
                        return Ok(());
                    }
                }
                if keys.is_empty() {
                    // Only new columns, each one constant: every pair of rows collides.
                    let rows = self.count(&format!("SELECT count(*) FROM {t}"))?;
                    e.duplicate_groups = Some(i64::from(rows > 1));
                    return Ok(());
                }
                let renamed = map.is_some_and(|m| m.columns.iter().any(|(n, o)| n != o));
                let (from, cols): (String, Vec<String>) = if (exprs || pred.is_some()) && renamed {
                    let m = map.expect("renamed implies a kept table");
                    let select: Vec<String> =
                        m.columns.iter().map(|(n, o)| format!("{} AS {}", self.q(o), self.q(n))).collect();
                    let cols = keys.iter().map(|(o, n)| if olds.contains(o) { self.q(n) } else { n.clone() }).collect();
                    (format!("(SELECT {} FROM {t}) r", select.join(", ")), cols)
                } else {
                    let cols = keys.iter().map(|(o, _)| if olds.contains(o) { self.q(o) } else { o.clone() }).collect();
                    (t.clone(), cols)
                };
                let mut scope: Vec<String> = cols.iter().map(|c| format!("{c} IS NOT NULL")).collect();
                if let Some(p) = pred {
                    scope.push(format!("({p})"));
                }
                let scope = scope.join(" AND ");
                let sql = format!(
                    "SELECT count(*) FROM (SELECT 1 AS one FROM {from} WHERE {scope} GROUP BY {} HAVING count(*) > 1) d",
                    cols.join(", ")
                );
                // The usual answer is "no duplicates": on the servers a distinct count tells it in
                // about half the time of grouping; the groups are counted only when there are
                // some. (SQLite's distinct count is slower than its GROUP BY.)
                let distinct = match (self.dialect, cols.as_slice()) {
                    _ if exprs => None,
                    (Dialect::Sqlite, _) => None,
                    (_, [c]) => Some(format!("count(DISTINCT {c})")),
                    (Dialect::Postgres, _) => Some(format!("count(DISTINCT ({}))", cols.join(", "))),
                    (Dialect::Mysql, _) => Some(format!("count(DISTINCT {})", cols.join(", "))),
                };
                if is_pk {
                    let any_null: Vec<String> = cols.iter().map(|c| format!("{c} IS NULL")).collect();
                    let sql = format!("SELECT count(*) FROM {t} WHERE {}", any_null.join(" OR "));
                    e.nulls = Some(self.count(&sql)?);
                    e.queries.insert(Figure::Nulls, sql);
                }
                if let Some(distinct) = distinct {
                    let quick = format!("SELECT count(*) - {distinct} FROM {from} WHERE {scope}");
                    if self.count(&quick)? == 0 {
                        // No duplicate rows is no duplicate groups: the cheaper query guards it too.
                        e.duplicate_groups = Some(0);
                        e.queries.insert(Figure::DuplicateGroups, quick.clone());
                        e.probe_sql = Some(quick);
                        return Ok(());
                    }
                }
                let dups = match self.count(&sql) {
                    Ok(n) => n,
                    // An expression or predicate over a column the table does not have yet.
                    Err(err) if exprs || pred.is_some() => {
                        e.unprobed = Some(format!("the index cannot be evaluated on the live data: {err}"));
                        return Ok(());
                    }
                    Err(err) => return Err(err),
                };
                e.duplicate_groups = Some(dups);
                e.queries.insert(Figure::DuplicateGroups, sql.clone());
                e.probe_sql = Some(sql);
                if dups > 0 {
                    e.duplicate_rows = Some(self.count(&format!(
                        "SELECT sum(n) - count(*) FROM (SELECT count(*) AS n FROM {from} WHERE {scope} GROUP BY {} HAVING count(*) > 1) d",
                        cols.join(", ")
                    ))?);
                    let texts: Vec<String> = cols.iter().map(|c| self.conn.as_text(c)).collect();
                    e.samples = self.sample(&format!(
                        "SELECT {}, count(*) FROM {from} WHERE {scope} GROUP BY {} HAVING count(*) > 1 ORDER BY count(*) DESC, {} LIMIT {n}",
                        texts.join(", "),
                        cols.join(", "),
                        cols.join(", ")
                    ))?;
                }
            }
            Kind::ForeignKeyAdded => {
                let Some(fk) = ch.foreign_key.clone() else {
                    return Ok(());
                };
                let olds: Option<Vec<String>> = fk.columns.iter().map(|c| old(c)).collect();
                let Some(olds) = olds else { return Ok(()) }; // new columns start NULL or default
                let child: Vec<String> = olds.iter().map(|c| format!("c.{}", self.q(c))).collect();
                let not_null: Vec<String> = child.iter().map(|c| format!("{c} IS NOT NULL")).collect();
                // The parent as it is in the copy now: a kept table (maybe renamed), or a new one (empty).
                let parent = diff.kept.get(&fk.ref_table);
                let cond = match parent {
                    Some(pm) => {
                        let prefs: Option<Vec<String>> =
                            fk.ref_columns.iter().map(|c| pm.columns.get(c).cloned()).collect();
                        match prefs {
                            Some(prefs) => {
                                let join: Vec<String> =
                                    child.iter().zip(&prefs).map(|(c, p)| format!("p.{} = {c}", self.q(p))).collect();
                                format!(
                                    "NOT EXISTS (SELECT 1 FROM {} p WHERE {})",
                                    self.q(&pm.current),
                                    join.join(" AND ")
                                )
                            }
                            None => "1=1".into(),
                        }
                    }
                    None => "1=1".into(),
                };
                let sql = format!("SELECT count(*) FROM {t} c WHERE {} AND {cond}", not_null.join(" AND "));
                let orphans = self.count(&sql)?;
                e.orphans = Some(orphans);
                e.queries.insert(Figure::Orphans, sql.clone());
                e.probe_sql = Some(sql);
                if orphans > 0 {
                    let texts: Vec<String> = child.iter().map(|c| self.conn.as_text(c)).collect();
                    e.samples = self.sample(&format!(
                        "SELECT {}, count(*) FROM {t} c WHERE {} AND {cond} GROUP BY {} ORDER BY count(*) DESC, {} LIMIT {n}",
                        texts.join(", "),
                        not_null.join(" AND "),
                        texts.join(", "),
                        texts.join(", ")
                    ))?;
                }
            }
            Kind::TableMerged => {
                let (Some((on, key)), Some(into)) = (ch.join.clone(), ch.parts.first()) else { return Ok(()) };
                let into_now = diff.kept.get(into).map(|m| m.current.clone()).unwrap_or(into.clone());
                let key_now = diff.kept.get(into).and_then(|m| m.columns.get(&key).cloned()).unwrap_or(key);
                let (on, k) = (self.q(&on), self.q(&key_now));
                // Several rows for one parent: an UPDATE from a join cannot keep them all.
                let dups = format!("SELECT count(*) FROM (SELECT {on} FROM {t} WHERE {on} IS NOT NULL GROUP BY {on} HAVING count(*) > 1) d");
                e.duplicate_groups = Some(self.count(&dups)?);
                e.queries.insert(Figure::DuplicateGroups, dups.clone());
                // Rows whose parent does not exist have nowhere to go.
                let orphans = format!(
                    "SELECT count(*) FROM {t} c WHERE NOT EXISTS (SELECT 1 FROM {} p WHERE p.{k} = c.{on})",
                    self.q(&into_now)
                );
                e.orphans = Some(self.count(&orphans)?);
                e.queries.insert(Figure::Orphans, orphans.clone());
                e.probe_sql = Some(format!("{dups}; {orphans}"));
            }
            Kind::CheckAdded => {
                let Some(chk) = ch.check.clone() else { return Ok(()) };
                // The check names the target's columns: read the current table through them
                // (renamed columns under their new names, new columns as NULL, which a check lets pass).
                let target_cols: Vec<String> = match diff.kept.get(&ch.table) {
                    Some(m) => {
                        let mut cols: Vec<String> =
                            m.columns.iter().map(|(new, old)| format!("{} AS {}", self.q(old), self.q(new))).collect();
                        cols.extend(
                            diff.changes
                                .iter()
                                .filter(|c| c.kind() == Kind::ColumnAdded && c.table == ch.table)
                                .filter_map(|c| c.column.as_ref())
                                .map(|c| format!("NULL AS {}", self.q(c))),
                        );
                        cols
                    }
                    None => vec!["*".into()],
                };
                let sql = format!(
                    "SELECT count(*) FROM (SELECT {} FROM {t}) r WHERE NOT ({})",
                    target_cols.join(", "),
                    chk.expr
                );
                match self.count(&sql) {
                    Ok(v) => {
                        e.violations = Some(v);
                        e.queries.insert(Figure::Violations, sql.clone());
                        e.probe_sql = Some(sql);
                    }
                    Err(err) => e.unprobed = Some(format!("the check cannot be evaluated on the live data: {err}")),
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn count(&mut self, sql: &str) -> anyhow::Result<i64> {
        let rows = self.conn.query(sql)?;
        Ok(figure_value(rows.first().and_then(|r| r.first()).cloned().flatten().as_deref()).unwrap_or(0))
    }
}
/// A default that gives every row the same value: a literal number, string, boolean or NULL,
/// perhaps with a cast (`'x'::text`).
fn is_constant(default: &str) -> bool {
    let d = default.trim();
    let d = d.split("::").next().unwrap_or(d).trim();
    let d = d.trim_start_matches('(').trim_end_matches(')').trim();
    let upper = d.to_ascii_uppercase();
    (d.starts_with('\'') && d.ends_with('\'') && d.len() >= 2)
        || d.trim_start_matches('-').parse::<f64>().is_ok()
        || matches!(upper.as_str(), "NULL" | "TRUE" | "FALSE")
}
