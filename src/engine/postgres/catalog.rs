//! Reading a PostgreSQL schema from pg_catalog into the neutral model: one query per object kind
//! (tables, columns, constraints, indexes) for the whole schema, never one per table, so 500
//! tables read in a few round trips. Only the first schema of the search_path
//! (`current_schema()`) is read, and `rehearse_history` is left out.
//!
//! Types and defaults are normalized so the same column reads the same however it was written
//! (`character varying(64)` is `varchar(64)`, `'x'::character varying` is `'x'`). Only SELECTs:
//! this runs on live opened read-only.

use crate::engine::Row;
use crate::schema::{Check, Column, ForeignKey, Index, Schema, Table, Unique};
use std::collections::BTreeMap;

/// The tables read, as a CTE every query joins.
pub(crate) const TABLES: &str = "WITH t AS (SELECT c.oid, c.relname FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition \
     AND c.relname <> 'rehearse_history' AND c.relname NOT LIKE 'rehearse\\_archive\\_%')";

/// The catalog queries for a server version (`server_version_num`): columns that newer servers
/// added are replaced by constants on older ones.
pub struct Queries {
    pub tables: String,
    pub columns: String,
    pub constraints: String,
    pub indexes: String,
}

pub fn queries(server_version_num: i32) -> Queries {
    let generated = if server_version_num >= 120000 { "a.attgenerated" } else { "''" };
    let nkeys = if server_version_num >= 110000 { "i.indnkeyatts" } else { "i.indnatts" };
    Queries {
        tables: format!("{TABLES} SELECT relname FROM t ORDER BY relname"),
        columns: format!(
            "{TABLES} SELECT t.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, \
               pg_catalog.pg_get_expr(d.adbin, d.adrelid), a.attidentity, {generated}, \
               EXISTS (SELECT 1 FROM pg_catalog.pg_depend dep \
                 JOIN pg_catalog.pg_class s ON s.oid = dep.objid AND s.relkind = 'S' \
                 WHERE dep.classid = 'pg_catalog.pg_class'::pg_catalog.regclass \
                   AND dep.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass \
                   AND dep.refobjid = a.attrelid AND dep.refobjsubid = a.attnum AND dep.deptype = 'a') \
             FROM t JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped \
             LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             ORDER BY t.relname, a.attnum"
        ),
        constraints: format!(
            "{TABLES} SELECT t.relname, con.conname, con.contype, \
               (SELECT pg_catalog.json_agg(a.attname ORDER BY k.n) \
                  FROM pg_catalog.unnest(con.conkey) WITH ORDINALITY k(attnum, n) \
                  JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum), \
               rt.relname, \
               (SELECT pg_catalog.json_agg(a.attname ORDER BY k.n) \
                  FROM pg_catalog.unnest(con.confkey) WITH ORDINALITY k(attnum, n) \
                  JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum), \
               con.confdeltype, con.confupdtype, \
               CASE WHEN con.contype = 'c' THEN pg_catalog.pg_get_constraintdef(con.oid, true) END, \
               con.condeferrable, con.condeferred \
             FROM t JOIN pg_catalog.pg_constraint con ON con.conrelid = t.oid \
             LEFT JOIN pg_catalog.pg_class rt ON rt.oid = con.confrelid \
             WHERE con.contype IN ('p', 'u', 'f', 'c') \
             ORDER BY t.relname, con.contype, con.conname"
        ),
        // Plain key columns by their name (unquoted, like column names everywhere else in the
        // model), expressions as PostgreSQL prints them.
        indexes: format!(
            "{TABLES} SELECT t.relname, ic.relname, i.indisunique, \
               (SELECT pg_catalog.json_agg(CASE WHEN i.indkey[k - 1] <> 0 THEN a.attname::text \
                         ELSE pg_catalog.pg_get_indexdef(i.indexrelid, k, true) END ORDER BY k) \
                  FROM pg_catalog.generate_series(1, {nkeys}) k \
                  LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k - 1]), \
               pg_catalog.pg_get_expr(i.indpred, i.indrelid, true), \
               pg_catalog.pg_get_indexdef(i.indexrelid) \
             FROM t JOIN pg_catalog.pg_index i ON i.indrelid = t.oid \
             JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid \
             WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint con WHERE con.conindid = i.indexrelid \
                 AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')) \
             ORDER BY t.relname, ic.relname"
        ),
    }
}

fn s(v: Option<&Option<String>>) -> String {
    v.cloned().flatten().unwrap_or_default()
}

fn names(v: Option<&Option<String>>) -> Vec<String> {
    serde_json::from_str(&s(v)).unwrap_or_default()
}

/// Build the Schema from the rows of the four queries (in `queries` column order).
pub fn assemble(tables: Vec<Row>, columns: Vec<Row>, constraints: Vec<Row>, indexes: Vec<Row>) -> Schema {
    let mut by_name: BTreeMap<String, Table> = BTreeMap::new();
    for r in tables {
        let name = s(r.first());
        by_name.insert(name.clone(), Table { name, ..Default::default() });
    }
    for r in columns {
        let Some(t) = by_name.get_mut(&s(r.first())) else { continue };
        let data_type = normalize_type(&s(r.get(2)));
        let raw_default = r.get(4).cloned().flatten();
        let identity = match s(r.get(5)).as_str() {
            "a" => Some("always".to_string()),
            "d" => Some("by default".to_string()),
            _ => None,
        };
        let generated = !s(r.get(6)).is_empty();
        let owns_sequence = s(r.get(7)) == "t";
        let serial = owns_sequence
            && identity.is_none()
            && raw_default.as_deref().is_some_and(|d| d.starts_with("nextval("))
            && matches!(data_type.as_str(), "integer" | "bigint" | "smallint");
        // A generated column's expression is not a default: the model has no place for it yet.
        let default = if serial || generated { None } else { raw_default.as_deref().and_then(normalize_default) };
        t.columns.push(Column {
            name: s(r.get(1)),
            data_type,
            nullable: s(r.get(3)) != "t",
            default,
            auto_increment: serial || identity.is_some(),
            identity,
        });
    }
    for r in constraints {
        let Some(t) = by_name.get_mut(&s(r.first())) else { continue };
        let name = s(r.get(1));
        let columns = names(r.get(3));
        match s(r.get(2)).as_str() {
            "p" => {
                t.primary_key = columns;
                t.primary_key_name = Some(name);
            }
            "u" => t.uniques.push(Unique { name: Some(name), columns }),
            "f" => t.foreign_keys.push(ForeignKey {
                name: Some(name),
                columns,
                ref_table: s(r.get(4)),
                ref_columns: names(r.get(5)),
                on_delete: fk_action(&s(r.get(6))),
                on_update: fk_action(&s(r.get(7))),
                deferrable: match (s(r.get(9)).as_str(), s(r.get(10)).as_str()) {
                    ("t", "t") => Some("DEFERRABLE INITIALLY DEFERRED".into()),
                    ("t", _) => Some("DEFERRABLE".into()),
                    _ => None,
                },
            }),
            "c" => {
                let def = s(r.get(8));
                let expr = check_expr(&def);
                let sql = Some(check_source(&def)).filter(|s| *s != expr);
                t.checks.push(Check { name: Some(name), expr, sql })
            }
            _ => {}
        }
    }
    for r in indexes {
        let Some(t) = by_name.get_mut(&s(r.first())) else { continue };
        t.indexes.push(Index {
            name: s(r.get(1)),
            columns: names(r.get(3)),
            unique: s(r.get(2)) == "t",
            predicate: r.get(4).cloned().flatten().map(|p| canonical_expr(&p)),
            sql: r.get(5).cloned().flatten(),
        });
    }
    Schema { engine: "postgres".into(), tables: by_name.into_values().collect() }
}

/// pg_constraint's confdeltype/confupdtype: NO ACTION is the default and reads as None.
fn fk_action(code: &str) -> Option<String> {
    match code {
        "c" => Some("CASCADE".into()),
        "n" => Some("SET NULL".into()),
        "d" => Some("SET DEFAULT".into()),
        "r" => Some("RESTRICT".into()),
        _ => None,
    }
}

/// format_type() output to the canonical short spelling: `character varying(64)` is
/// `varchar(64)`, `timestamp with time zone` is `timestamptz`; arrays keep their `[]`. Every
/// result is itself a valid PostgreSQL type name, so scripts can use it as written.
pub fn normalize_type(formatted: &str) -> String {
    let t = formatted.trim();
    let (base, array) = match t.find("[]") {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    // `timestamp(3) with time zone` carries its precision in the middle.
    let (head, precision, tail) = match (base.find('('), base.find(')')) {
        (Some(o), Some(c)) if o < c => (&base[..o], &base[o..=c], base[c + 1..].trim()),
        _ => (base, "", ""),
    };
    let name = match (head.trim(), tail) {
        ("character varying", "") => "varchar",
        ("character", "") => "char",
        ("bit varying", "") => "varbit",
        ("timestamp", "without time zone") | ("timestamp without time zone", "") => "timestamp",
        ("timestamp", "with time zone") | ("timestamp with time zone", "") => "timestamptz",
        ("time", "without time zone") | ("time without time zone", "") => "time",
        ("time", "with time zone") | ("time with time zone", "") => "timetz",
        _ => return t.to_string(),
    };
    format!("{name}{precision}{array}")
}

const NUMERIC_TYPES: &[&str] = &["integer", "bigint", "smallint", "numeric", "real", "double precision"];

/// pg_get_expr() output of a default, without the casts PostgreSQL adds to a plain literal:
/// `'x'::character varying` is `'x'`, `'-1'::integer` is `-1`. Anything else (now(),
/// CURRENT_TIMESTAMP, nextval of a shared sequence, expressions) is kept as PostgreSQL prints it.
/// `NULL::type` is no default at all.
pub fn normalize_default(expr: &str) -> Option<String> {
    let e = expr.trim();
    if let Some(rest) = e.strip_prefix("NULL::") {
        if is_plain_type(rest) {
            return None;
        }
    }
    let Some((literal, cast)) = split_literal_cast(e) else { return Some(e.to_string()) };
    if !is_plain_type(cast) {
        return Some(e.to_string());
    }
    let inner = &literal[1..literal.len() - 1];
    let cast_base = cast.split('(').next().unwrap_or("").trim();
    if NUMERIC_TYPES.contains(&cast_base) && is_number(inner) {
        Some(inner.to_string())
    } else {
        Some(literal.to_string())
    }
}

/// `'...'::rest` as (`'...'`, `rest`) when the quoted literal is followed by exactly one cast.
fn split_literal_cast(e: &str) -> Option<(&str, &str)> {
    if !e.starts_with('\'') {
        return None;
    }
    let bytes = e.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            if bytes.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            let rest = e[i + 1..].strip_prefix("::")?;
            return Some((&e[..=i], rest));
        }
        i += 1;
    }
    None
}

/// A type name as format_type prints it (letters, spaces, a typmod, `[]`, a quoted name): no
/// operator, no second cast.
fn is_plain_type(t: &str) -> bool {
    !t.is_empty() && !t.contains("::") && t.chars().all(|c| c.is_ascii_alphanumeric() || " _(),[]\".".contains(c))
}

fn is_number(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let mut parts = digits.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// `CHECK ((a > 0)) NOT VALID` as `a > 0`: without the keyword, its parentheses, and any further
/// parentheses that only wrap the whole expression.
pub fn check_expr(def: &str) -> String {
    canonical_expr(check_body(def))
}

/// The expression of `CHECK (...)` as PostgreSQL printed it, without the keyword, the outer
/// parentheses and NOT VALID / NO INHERIT.
fn check_body(def: &str) -> &str {
    let mut e = def.trim();
    if let Some(rest) = e.strip_suffix("NOT VALID") {
        e = rest.trim_end();
    }
    if let Some(rest) = e.strip_suffix("NO INHERIT") {
        e = rest.trim_end();
    }
    if let Some(rest) = e.strip_prefix("CHECK") {
        e = rest.trim_start();
    }
    while e.starts_with('(') && closing_paren(e) == Some(e.len() - 1) {
        e = e[1..e.len() - 1].trim();
    }
    e
}

/// The text that recreates a check exactly as it was declared: what PostgreSQL printed, with
/// `col::text = ANY (ARRAY['a'::character varying, ...]::text[])` (how `col IN ('a', ...)` on a
/// varchar column prints) written back as `col IN ('a', ...)`, and `<> ALL` as `NOT IN`. Its
/// printed form is not a fixed point, so recreating it from the printed form would change it.
pub fn check_source(def: &str) -> String {
    let e = check_body(def);
    let mut out = String::with_capacity(e.len());
    let mut i = 0;
    while i < e.len() {
        if let Some((rewritten, used)) = in_list(&e[i..]) {
            let start_ok = i == 0 || e[..i].ends_with(['(', ' ']);
            if start_ok {
                out.push_str(&rewritten);
                i += used;
                continue;
            }
        }
        let b = e.as_bytes()[i];
        let end = match b {
            b'\'' => literal_end(e, i),
            b'"' => e[i + 1..].find('"').map_or(e.len(), |j| i + j + 2),
            _ => i + e[i..].chars().next().map_or(1, char::len_utf8),
        };
        // Identifiers are copied whole, so a match never starts inside one.
        let end = if b.is_ascii_alphanumeric() || b == b'_' {
            i + e[i..].find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(e.len() - i)
        } else {
            end
        };
        out.push_str(&e[i..end]);
        i = end;
    }
    out
}

/// `col::text = ANY (ARRAY['a'::character varying, ...]::text[])` at the start of `e` as
/// `col IN ('a', ...)` (`<> ALL`: `NOT IN`), with the bytes consumed.
fn in_list(e: &str) -> Option<(String, usize)> {
    let ident_end = if let Some(quoted) = e.strip_prefix('"') {
        quoted.find('"')? + 2
    } else {
        let n = e.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(e.len());
        if n == 0 || e.as_bytes()[0].is_ascii_digit() {
            return None;
        }
        n
    };
    let ident = &e[..ident_end];
    let rest = e[ident_end..].strip_prefix("::text ")?;
    let (op, rest) = if let Some(r) = rest.strip_prefix("= ANY (ARRAY[") {
        ("IN", r)
    } else {
        ("NOT IN", rest.strip_prefix("<> ALL (ARRAY[")?)
    };
    let mut i = e.len() - rest.len();
    let mut literals = Vec::new();
    loop {
        if !e[i..].starts_with('\'') {
            return None;
        }
        let end = literal_end(e, i);
        literals.push(&e[i..end]);
        i = e.len() - e[end..].strip_prefix("::character varying")?.len();
        if let Some(r) = e[i..].strip_prefix(", ") {
            i = e.len() - r.len();
            continue;
        }
        i = e.len() - e[i..].strip_prefix("]::text[])")?.len();
        break;
    }
    Some((format!("{ident} {op} ({})", literals.join(", ")), i))
}

/// An expression as PostgreSQL would print it after one more round trip. Its deparsed text is
/// not a fixed point: `s IN ('a', 'b')` on a varchar column prints as
/// `ARRAY['a'::character varying, 'b'::character varying]::text[]`, which re-parses to
/// `ARRAY['a'::character varying::text, ...]`. Both mean `ARRAY['a'::text, 'b'::text]`, which
/// is stable, so both are rewritten to it: the same check reads the same before and after a
/// script recreates it. Only literals cast to unconstrained varchar are touched.
pub fn canonical_expr(e: &str) -> String {
    const VARCHAR: &str = "::character varying";
    let b = e.as_bytes();
    let mut out = String::with_capacity(e.len());
    let mut i = 0;
    while i < e.len() {
        if e[i..].starts_with("ARRAY[") {
            if let Some((rewritten, used)) = text_array(&e[i..]) {
                out.push_str(&rewritten);
                i += used;
                continue;
            }
        }
        if b[i] == b'\'' {
            let end = literal_end(e, i);
            out.push_str(&e[i..end]);
            let rest = &e[end..];
            if let Some(after) = rest.strip_prefix(VARCHAR).and_then(|r| r.strip_prefix("::text")) {
                if !after.starts_with(|c: char| c.is_alphanumeric() || c == '_' || c == '[' || c == '(') {
                    out.push_str("::text");
                    i = end + VARCHAR.len() + "::text".len();
                    continue;
                }
            }
            i = end;
            continue;
        }
        if b[i] == b'"' {
            let end = e[i + 1..].find('"').map_or(e.len(), |j| i + j + 2);
            out.push_str(&e[i..end]);
            i = end;
            continue;
        }
        let c = e[i..].chars().next().expect("in bounds");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Index just past the string literal starting at `start` (doubled quotes stay inside).
fn literal_end(e: &str, start: usize) -> usize {
    let b = e.as_bytes();
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == b'\'' {
            if b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// `ARRAY['a'::character varying, ...]::text[]` or `ARRAY['a'::character varying::text, ...]`
/// as `ARRAY['a'::text, ...]`, with the number of bytes consumed; None for any other array.
fn text_array(e: &str) -> Option<(String, usize)> {
    let mut i = "ARRAY[".len();
    let mut literals = Vec::new();
    let mut element_text_casts = 0;
    loop {
        if !e[i..].starts_with('\'') {
            return None;
        }
        let end = literal_end(e, i);
        literals.push(&e[i..end]);
        let rest = e[end..].strip_prefix("::character varying")?;
        i = e.len() - rest.len();
        if e[i..].starts_with("::text") && !e[i + 6..].starts_with('[') {
            element_text_casts += 1;
            i += "::text".len();
        }
        if let Some(rest) = e[i..].strip_prefix(", ") {
            i = e.len() - rest.len();
            continue;
        }
        if e[i..].starts_with(']') {
            i += 1;
            break;
        }
        return None;
    }
    if element_text_casts == literals.len() {
        // ARRAY['a'::character varying::text, ...]
    } else if element_text_casts == 0 && e[i..].starts_with("::text[]") {
        i += "::text[]".len();
    } else {
        return None;
    }
    let items: Vec<String> = literals.iter().map(|l| format!("{l}::text")).collect();
    Some((format!("ARRAY[{}]", items.join(", ")), i))
}

/// Byte index of the parenthesis closing the one at index 0, skipping quoted text.
fn closing_paren(e: &str) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<u8> = None;
    for (i, b) in e.bytes().enumerate() {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'\'' | b'"' => quote = Some(b),
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            },
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_type_spellings_become_the_short_canonical_names() {
        let cases = [
            ("character varying(64)", "varchar(64)"),
            ("character varying", "varchar"),
            ("character(2)", "char(2)"),
            ("integer", "integer"),
            ("numeric(10,2)", "numeric(10,2)"),
            ("double precision", "double precision"),
            ("timestamp without time zone", "timestamp"),
            ("timestamp(3) without time zone", "timestamp(3)"),
            ("timestamp with time zone", "timestamptz"),
            ("timestamp(0) with time zone", "timestamptz(0)"),
            ("time without time zone", "time"),
            ("time with time zone", "timetz"),
            ("integer[]", "integer[]"),
            ("character varying(20)[]", "varchar(20)[]"),
            ("bit varying(5)", "varbit(5)"),
            ("\"Mood\"", "\"Mood\""),
            ("jsonb", "jsonb"),
        ];
        for (from, to) in cases {
            assert_eq!(normalize_type(from), to, "{from}");
        }
    }

    #[test]
    fn literal_defaults_lose_their_redundant_casts() {
        assert_eq!(normalize_default("'x'::character varying").as_deref(), Some("'x'"));
        assert_eq!(normalize_default("'it''s'::text").as_deref(), Some("'it''s'"));
        assert_eq!(normalize_default("'0'::numeric").as_deref(), Some("0"));
        assert_eq!(normalize_default("'-1'::integer").as_deref(), Some("-1"));
        assert_eq!(normalize_default("'-1.5'::numeric").as_deref(), Some("-1.5"));
        assert_eq!(normalize_default("'{}'::jsonb").as_deref(), Some("'{}'"));
        assert_eq!(normalize_default("'2020-01-01'::date").as_deref(), Some("'2020-01-01'"));
        assert_eq!(normalize_default("now()").as_deref(), Some("now()"));
        assert_eq!(normalize_default("CURRENT_TIMESTAMP").as_deref(), Some("CURRENT_TIMESTAMP"));
        assert_eq!(normalize_default("('a'::text || 'b'::text)").as_deref(), Some("('a'::text || 'b'::text)"));
        assert_eq!(normalize_default("'1'::text::integer").as_deref(), Some("'1'::text::integer"));
        assert_eq!(normalize_default("NULL::character varying"), None);
    }

    #[test]
    fn check_expressions_lose_the_keyword_and_outer_parentheses() {
        assert_eq!(check_expr("CHECK (price > 0::numeric)"), "price > 0::numeric");
        assert_eq!(check_expr("CHECK ((a > 0)) NOT VALID"), "a > 0");
        assert_eq!(check_expr("CHECK ((a > 0) AND (b > 0))"), "(a > 0) AND (b > 0)");
        assert_eq!(check_expr("CHECK (x <> ')'::text)"), "x <> ')'::text");
    }

    #[test]
    fn checks_are_recreated_as_they_were_declared() {
        let printed = "CHECK (status::text = ANY (ARRAY['a'::character varying, 'it''s'::character varying]::text[]))";
        assert_eq!(check_source(printed), "status IN ('a', 'it''s')");
        assert_eq!(
            check_source("CHECK ((\"Kind\"::text <> ALL (ARRAY['x'::character varying]::text[])) AND (n > 0))"),
            "(\"Kind\" NOT IN ('x')) AND (n > 0)"
        );
        // Left as printed: text columns, element casts, a match inside a longer name or a literal.
        for keep in [
            "t = ANY (ARRAY['a'::text, 'b'::text])",
            "s::text = ANY (ARRAY['a'::character varying::text])",
            "xs::text = ANY (ARRAY['a'::character varying(2)]::text[])",
            "note <> 's::text = ANY (ARRAY[''a''::character varying]::text[])'::text",
        ] {
            assert_eq!(check_source(&format!("CHECK ({keep})")), keep);
        }
    }

    #[test]
    fn varchar_literal_arrays_read_the_same_before_and_after_a_round_trip() {
        let first = "status::text = ANY (ARRAY['pending'::character varying, 'it''s'::character varying]::text[])";
        let again = "status::text = ANY (ARRAY['pending'::character varying::text, 'it''s'::character varying::text])";
        let stable = "status::text = ANY (ARRAY['pending'::text, 'it''s'::text])";
        assert_eq!(canonical_expr(first), stable);
        assert_eq!(canonical_expr(again), stable);
        assert_eq!(canonical_expr(stable), stable);
        assert_eq!(canonical_expr("s::text = 'x'::character varying::text"), "s::text = 'x'::text");
        // Not touched: other types, constrained varchar, mixed arrays, quoted text.
        for keep in [
            "c = ANY (ARRAY['ab'::bpchar, 'cd'::bpchar])",
            "n = ANY (ARRAY[1::numeric, 2.5])",
            "s = 'x'::character varying(2)::text",
            "x = ANY (ARRAY['a'::character varying, 'b'::text])",
            "\"ARRAY['a'::character varying]::text[]\" > 0",
            "note <> 'ARRAY[''a''::character varying]::text[]'::text",
        ] {
            assert_eq!(canonical_expr(keep), keep);
        }
    }
}
