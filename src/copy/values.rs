//! Values on their way between engines: how a column is selected so that its text travels well
//! (binary as hex, booleans as 1/0), how a text value becomes a literal in the target's dialect,
//! and the canonical form both sides are hashed in, so the checksum compares values, not spellings
//! (`12.50` and `12.5`, `t` and `1`, `{"a": 1}` and `{"a":1}`). NULL is never turned into a value.

use crate::engine::{Dialect, Row};
use crate::schema::{Column, Family};
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// The family a column's values are handled as. An SQLite column declared without a type holds
/// anything; it travels as text.
pub fn family(dialect: Dialect, c: &Column) -> Family {
    if dialect == Dialect::Sqlite && c.data_type.trim().is_empty() {
        return Family::Text;
    }
    Family::of(&c.data_type)
}

/// The SELECT expression of a column, so that its text form can be written anywhere.
pub fn select_expr(d: Dialect, c: &Column) -> String {
    let q = d.quote(&c.name);
    match (family(d, c), d) {
        (Family::Binary, Dialect::Postgres) => format!("encode({q}, 'hex')"),
        // SQLite's hex(NULL) is '', not NULL.
        (Family::Binary, _) => format!("CASE WHEN {q} IS NULL THEN NULL ELSE lower(hex({q})) END"),
        (Family::Boolean, Dialect::Postgres) => format!("{q}::int"),
        _ => q,
    }
}

fn truthy(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "y" | "yes" | "on" => Some(true),
        "0" | "f" | "false" | "n" | "no" | "off" => Some(false),
        _ => None,
    }
}

pub fn is_number(s: &str) -> bool {
    let t = s.strip_prefix('-').unwrap_or(s);
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let mut parts = mantissa.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next().unwrap_or("");
    (!int.is_empty() || !frac.is_empty())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && exp.is_none_or(|e| {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
        })
}

fn is_hex(s: &str) -> bool {
    s.len().is_multiple_of(2) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A timestamp without its UTC marker (`+00`, `+00:00`, `Z`): MySQL and MariaDB take none.
fn without_utc(v: &str) -> &str {
    for suffix in ["+00:00", "+00", "Z"] {
        if let Some(s) = v.strip_suffix(suffix) {
            return s;
        }
    }
    v
}

/// The literal of `v` for a column of family `fam` in dialect `d`.
pub fn literal(d: Dialect, fam: Family, v: &str) -> anyhow::Result<String> {
    Ok(match fam {
        Family::Integer | Family::Decimal | Family::Float if is_number(v) => v.to_string(),
        Family::Boolean => match (truthy(v), d) {
            (Some(b), Dialect::Postgres) => (if b { "true" } else { "false" }).to_string(),
            (Some(b), _) => (if b { "1" } else { "0" }).to_string(),
            (None, _) => d.literal(v),
        },
        Family::Binary => {
            if !is_hex(v) {
                anyhow::bail!("a binary value is not hex text ({} characters)", v.len());
            }
            match d {
                Dialect::Postgres => format!("'\\x{v}'::bytea"),
                _ => format!("X'{v}'"),
            }
        }
        Family::Temporal if d == Dialect::Mysql => d.literal(without_utc(v)),
        _ => d.literal(v),
    })
}

/// Append `v` to a PostgreSQL COPY text-format line, for a column of family `fam`.
pub fn copy_text(fam: Family, v: &str, out: &mut String) -> anyhow::Result<()> {
    let v = match fam {
        Family::Boolean => match truthy(v) {
            Some(true) => "t",
            Some(false) => "f",
            None => v,
        },
        Family::Binary => {
            if !is_hex(v) {
                anyhow::bail!("a binary value is not hex text ({} characters)", v.len());
            }
            out.push_str("\\\\x");
            out.push_str(v);
            return Ok(());
        }
        _ => v,
    };
    // Runs without a character to escape are copied whole.
    let mut start = 0;
    for (i, b) in v.bytes().enumerate() {
        let escaped = match b {
            b'\\' => "\\\\",
            b'\t' => "\\t",
            b'\n' => "\\n",
            b'\r' => "\\r",
            _ => continue,
        };
        out.push_str(&v[start..i]);
        out.push_str(escaped);
        start = i + 1;
    }
    out.push_str(&v[start..]);
    Ok(())
}

/// `12.500` is `12.5`, `3.0` is `3`, `+1` is `1`, `-0` is `0`.
fn canonical_decimal(v: &str) -> String {
    let t = v.trim();
    if !is_number(t) || t.contains(['e', 'E']) {
        return match t.parse::<f64>() {
            Ok(f) if t.contains(['e', 'E']) => f.to_string(),
            _ => t.to_string(),
        };
    }
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let body = if frac.is_empty() { int.to_string() } else { format!("{int}.{frac}") };
    if neg && body != "0" {
        format!("-{body}")
    } else {
        body
    }
}

fn canonical_temporal(v: &str) -> String {
    let mut s = without_utc(v.trim()).to_string();
    if s.len() > 10 && s.as_bytes()[10] == b'T' {
        s.replace_range(10..11, " ");
    }
    if let Some(dot) = s.rfind('.') {
        if s[dot + 1..].bytes().all(|b| b.is_ascii_digit()) && s[..dot].contains(':') {
            let frac = s[dot + 1..].trim_end_matches('0').to_string();
            s.truncate(dot);
            if !frac.is_empty() {
                s.push('.');
                s.push_str(&frac);
            }
        }
    }
    s
}

/// The form a value is hashed in, the same whichever engine it was read from. Text and values
/// already in canonical form are not copied.
pub fn canonical(fam: Family, v: &str) -> Cow<'_, str> {
    match fam {
        Family::Integer if v.bytes().all(|b| b.is_ascii_digit()) && !v.starts_with('0') => Cow::Borrowed(v),
        Family::Integer | Family::Decimal => Cow::Owned(canonical_decimal(v)),
        Family::Float => match v.trim().parse::<f64>() {
            // -0 and 0 are one value.
            Ok(0.0) => Cow::Borrowed("0"),
            Ok(f) => Cow::Owned(f.to_string()),
            Err(_) => Cow::Borrowed(v),
        },
        Family::Boolean => match truthy(v) {
            Some(b) => Cow::Borrowed(if b { "1" } else { "0" }),
            None => Cow::Borrowed(v),
        },
        Family::Temporal => Cow::Owned(canonical_temporal(v)),
        Family::Json => match serde_json::from_str::<serde_json::Value>(v) {
            Ok(j) => Cow::Owned(j.to_string()),
            Err(_) => Cow::Borrowed(v),
        },
        Family::Binary => Cow::Owned(v.to_ascii_lowercase()),
        _ => Cow::Borrowed(v),
    }
}

/// An order-independent checksum of a table: the number of rows and the wrapping sum of a
/// SHA-256 prefix per row, so reading the two sides in different orders gives the same figures.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Checksum {
    pub rows: u64,
    pub sum: u128,
}

impl Checksum {
    pub fn add(&mut self, families: &[Family], row: &Row) {
        let mut h = Sha256::new();
        for (v, fam) in row.iter().zip(families) {
            match v {
                None => h.update([0u8]),
                Some(v) => {
                    let c = canonical(*fam, v);
                    h.update([1u8]);
                    h.update((c.len() as u64).to_le_bytes());
                    h.update(c.as_bytes());
                }
            }
        }
        let digest = h.finalize();
        let mut prefix = [0u8; 16];
        prefix.copy_from_slice(&digest[..16]);
        self.sum = self.sum.wrapping_add(u128::from_le_bytes(prefix));
        self.rows += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_compare_by_value_not_spelling() {
        assert_eq!(canonical(Family::Decimal, "12.50"), "12.5");
        assert_eq!(canonical(Family::Decimal, "3.00"), "3");
        assert_eq!(canonical(Family::Decimal, "-0.0"), "0");
        assert_eq!(canonical(Family::Decimal, "0.25"), "0.25");
        assert_eq!(canonical(Family::Integer, "007"), "7");
    }

    #[test]
    fn timestamps_compare_without_utc_marker_and_trailing_zeros() {
        assert_eq!(canonical(Family::Temporal, "2024-01-02 03:04:05.120000"), "2024-01-02 03:04:05.12");
        assert_eq!(canonical(Family::Temporal, "2024-01-02T03:04:05+00"), "2024-01-02 03:04:05");
        assert_eq!(canonical(Family::Temporal, "2024-01-02"), "2024-01-02");
    }

    #[test]
    fn json_compares_by_structure() {
        assert_eq!(
            canonical(Family::Json, r#"{"b": 1, "a": [1, 2]}"#),
            canonical(Family::Json, r#"{"a":[1,2],"b":1}"#)
        );
    }

    #[test]
    fn checksum_ignores_row_order_but_not_nulls() {
        let f = [Family::Text, Family::Integer];
        let (a, b) = (vec![Some("x".into()), None], vec![None, Some("1".into())]);
        let (mut one, mut two) = (Checksum::default(), Checksum::default());
        one.add(&f, &a);
        one.add(&f, &b);
        two.add(&f, &b);
        two.add(&f, &a);
        assert_eq!(one, two);
        let mut three = Checksum::default();
        three.add(&f, &vec![Some("".into()), None]);
        three.add(&f, &b);
        assert_ne!(one, three);
    }

    #[test]
    fn copy_text_escapes_what_the_copy_format_reads_as_control() {
        let mut out = String::new();
        copy_text(Family::Text, "a\tb\nc\\d\re", &mut out).unwrap();
        assert_eq!(out, "a\\tb\\nc\\\\d\\re");
        out.clear();
        copy_text(Family::Binary, "00ff", &mut out).unwrap();
        assert_eq!(out, "\\\\x00ff");
        out.clear();
        copy_text(Family::Boolean, "1", &mut out).unwrap();
        assert_eq!(out, "t");
    }

    #[test]
    fn literals_follow_the_target_dialect() {
        assert_eq!(literal(Dialect::Mysql, Family::Boolean, "t").unwrap(), "1");
        assert_eq!(literal(Dialect::Postgres, Family::Binary, "00ff").unwrap(), "'\\x00ff'::bytea");
        assert_eq!(literal(Dialect::Mysql, Family::Text, "a'b\\c").unwrap(), "'a''b\\\\c'");
        assert_eq!(
            literal(Dialect::Mysql, Family::Temporal, "2024-01-02 03:04:05+00").unwrap(),
            "'2024-01-02 03:04:05'"
        );
        assert_eq!(literal(Dialect::Postgres, Family::Integer, "12").unwrap(), "12");
        assert_eq!(literal(Dialect::Postgres, Family::Integer, "x").unwrap(), "'x'");
    }
}
