//! PostgreSQL's binary COPY format, the fast way into a PostgreSQL target: the server skips
//! splitting and unescaping text, which is most of what a text COPY costs it. Values arrive as
//! text from any engine; each is turned into the bytes PostgreSQL's own input function would have
//! made of that text, for the types listed in `Kind`.
//!
//! It must never guess: a text whose meaning is not plain (`+5`, ` 5`, `1e3` for an integer, a
//! timestamp with an offset in a column without a time zone, `infinity`, a year beyond 9999, a
//! float that overflows...) is refused with `NotBinary`, and the table loads in the text format,
//! where PostgreSQL itself reads it (and refuses it with its own message when it must).

use crate::engine::Row;

/// The binary form of one target column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Bool,
    /// text, varchar(n), char(n): the UTF-8 bytes (the server applies the length as for text).
    Text,
    Bytea,
    Numeric,
    Date,
    Time,
    Timestamp,
    Timestamptz,
    Json,
    Jsonb,
}

/// The kind of a PostgreSQL column type as rehearse spells it (`varchar(40)`, `numeric(10,2)`,
/// `timestamptz`), or None when the table must travel in the text format.
pub fn kind(data_type: &str) -> Option<Kind> {
    let t = data_type.trim().to_ascii_lowercase();
    if t.contains('[') {
        return None;
    }
    let base = t.split('(').next().unwrap_or("").trim();
    Some(match base {
        "smallint" | "int2" => Kind::Int2,
        "integer" | "int" | "int4" => Kind::Int4,
        "bigint" | "int8" => Kind::Int8,
        "real" | "float4" => Kind::Float4,
        "double precision" | "float8" => Kind::Float8,
        "boolean" | "bool" => Kind::Bool,
        "text" | "varchar" | "character varying" | "char" | "character" | "bpchar" => Kind::Text,
        "bytea" => Kind::Bytea,
        "numeric" | "decimal" => Kind::Numeric,
        "date" => Kind::Date,
        "time" | "time without time zone" => Kind::Time,
        "timestamp" | "timestamp without time zone" => Kind::Timestamp,
        "timestamptz" | "timestamp with time zone" => Kind::Timestamptz,
        "json" => Kind::Json,
        "jsonb" => Kind::Jsonb,
        _ => return None,
    })
}

/// A value this module does not turn into binary; the table is loaded in the text format instead.
#[derive(Debug, thiserror::Error)]
#[error("column {column}: {value:?} is not plain {kind:?} text")]
pub struct NotBinary {
    pub column: String,
    pub value: String,
    pub kind: Kind,
}

/// The signature, flags and header extension that open a binary COPY stream.
pub fn header() -> Vec<u8> {
    let mut h = b"PGCOPY\n\xff\r\n\0".to_vec();
    h.extend_from_slice(&0i32.to_be_bytes());
    h.extend_from_slice(&0i32.to_be_bytes());
    h
}

/// The end of a binary COPY stream.
pub fn trailer() -> Vec<u8> {
    (-1i16).to_be_bytes().to_vec()
}

/// Append one row. `names` name the columns for errors.
pub fn encode_row(kinds: &[Kind], names: &[String], row: &Row, out: &mut Vec<u8>) -> anyhow::Result<()> {
    out.extend_from_slice(&(kinds.len() as i16).to_be_bytes());
    for ((kind, name), v) in kinds.iter().zip(names).zip(row) {
        let Some(v) = v else {
            out.extend_from_slice(&(-1i32).to_be_bytes());
            continue;
        };
        // The length is written once the value is.
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        if !value(*kind, v, out)? {
            return Err(NotBinary { column: name.clone(), value: v.chars().take(40).collect(), kind: *kind }.into());
        }
        let len = (out.len() - at - 4) as i32;
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

/// Append the binary form of `v`; false when its text is not plain enough to be sure.
fn value(kind: Kind, v: &str, out: &mut Vec<u8>) -> anyhow::Result<bool> {
    match kind {
        Kind::Text | Kind::Json => out.extend_from_slice(v.as_bytes()),
        Kind::Jsonb => {
            // jsonb's binary input is a version byte, then the text.
            out.push(1);
            out.extend_from_slice(v.as_bytes());
        }
        Kind::Int2 => match integer(v).and_then(|i| i16::try_from(i).ok()) {
            Some(i) => out.extend_from_slice(&i.to_be_bytes()),
            None => return Ok(false),
        },
        Kind::Int4 => match integer(v).and_then(|i| i32::try_from(i).ok()) {
            Some(i) => out.extend_from_slice(&i.to_be_bytes()),
            None => return Ok(false),
        },
        Kind::Int8 => match integer(v) {
            Some(i) => out.extend_from_slice(&i.to_be_bytes()),
            None => return Ok(false),
        },
        Kind::Float4 => match float(v).and_then(|_| v.parse::<f32>().ok()) {
            Some(f) if f.is_finite() && (f == 0.0) == zero_text(v) && (f == 0.0 || f.abs() >= f32::MIN_POSITIVE) => {
                out.extend_from_slice(&f.to_be_bytes())
            }
            _ => return Ok(false),
        },
        Kind::Float8 => match float(v) {
            Some(f) if f.is_finite() && (f == 0.0) == zero_text(v) && (f == 0.0 || f.abs() >= f64::MIN_POSITIVE) => {
                out.extend_from_slice(&f.to_be_bytes())
            }
            _ => return Ok(false),
        },
        Kind::Bool => match v {
            "1" | "t" | "true" => out.push(1),
            "0" | "f" | "false" => out.push(0),
            _ => return Ok(false),
        },
        Kind::Bytea => {
            if !v.len().is_multiple_of(2) || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                anyhow::bail!("a binary value is not hex text ({} characters)", v.len());
            }
            for pair in v.as_bytes().chunks(2) {
                let hex = |b: u8| (b as char).to_digit(16).expect("checked hex") as u8;
                out.push(hex(pair[0]) << 4 | hex(pair[1]));
            }
        }
        Kind::Numeric => return Ok(numeric(v, out)),
        Kind::Date => match date(v) {
            Some(days) => out.extend_from_slice(&(days as i32).to_be_bytes()),
            None => return Ok(false),
        },
        Kind::Time => match time(v) {
            Some(micros) => out.extend_from_slice(&micros.to_be_bytes()),
            None => return Ok(false),
        },
        Kind::Timestamp | Kind::Timestamptz => match timestamp(v, kind == Kind::Timestamptz) {
            Some(micros) => out.extend_from_slice(&micros.to_be_bytes()),
            None => return Ok(false),
        },
    }
    Ok(true)
}

/// `-?[0-9]+` as an i64: no spaces, no plus sign, no leading zeros beyond a lone 0.
fn integer(v: &str) -> Option<i64> {
    let digits = v.strip_prefix('-').unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    v.parse().ok()
}

/// A decimal number (`-1.5`, `2e10`, `.5`), never `inf`, `NaN` or spaces.
fn float(v: &str) -> Option<f64> {
    if !crate::copy::values::is_number(v) {
        return None;
    }
    v.parse().ok()
}

/// Whether a number's text is zero: a float that is 0 for a text that is not underflowed, and
/// PostgreSQL refuses it (as it refuses overflow and, here, subnormals).
fn zero_text(v: &str) -> bool {
    !v.split(['e', 'E']).next().unwrap_or("").bytes().any(|b| (b'1'..=b'9').contains(&b))
}

/// `-?[0-9]*.?[0-9]*` in PostgreSQL's numeric binary form: base-10000 digits, weight, sign and
/// display scale (the number of fraction digits written, as numeric_in keeps them).
fn numeric(v: &str, out: &mut Vec<u8>) -> bool {
    let (neg, body) = match v.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, v),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 1000
    {
        return false;
    }
    let int = int.trim_start_matches('0');
    // Groups of 4 decimal digits: the integer part aligned on the point from the left, the
    // fraction from the right.
    let lead = (4 - int.len() % 4) % 4;
    let mut digits: Vec<i16> = Vec::new();
    let int_padded: Vec<u8> = std::iter::repeat_n(b'0', lead).chain(int.bytes()).collect();
    for g in int_padded.chunks(4) {
        digits.push(group(g));
    }
    let mut weight = digits.len() as i32 - 1;
    let frac_padded: Vec<u8> = frac.bytes().chain(std::iter::repeat_n(b'0', (4 - frac.len() % 4) % 4)).collect();
    for g in frac_padded.chunks(4) {
        digits.push(group(g));
    }
    while digits.first() == Some(&0) {
        digits.remove(0);
        weight -= 1;
    }
    while digits.last() == Some(&0) {
        digits.pop();
    }
    let zero = digits.is_empty();
    if zero {
        weight = 0;
    }
    out.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    out.extend_from_slice(&(weight as i16).to_be_bytes());
    out.extend_from_slice(&(if neg && !zero { 0x4000u16 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&(frac.len() as u16).to_be_bytes());
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
    true
}

fn group(g: &[u8]) -> i16 {
    g.iter().fold(0i16, |acc, b| acc * 10 + i16::from(b - b'0'))
}

/// Days from 2000-01-01 to `y-m-d` (proleptic Gregorian), for a valid date of years 1 to 9999.
fn days(y: i64, m: i64, d: i64) -> Option<i64> {
    if !(1..=9999).contains(&y) || !(1..=12).contains(&m) || d < 1 {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if d > month_days[(m - 1) as usize] {
        return None;
    }
    // Howard Hinnant's days_from_civil, shifted from 1970 to 2000 (10957 days).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146097 + doe - 719468 - 10957)
}

fn digits_of(s: &str, n: usize) -> Option<i64> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// `YYYY-MM-DD` as days from 2000-01-01.
fn date(v: &str) -> Option<i64> {
    let mut parts = v.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    days(digits_of(y, 4)?, digits_of(m, 2)?, digits_of(d, 2)?)
}

/// `HH:MM:SS` with up to 6 fraction digits, as microseconds from midnight.
fn time(v: &str) -> Option<i64> {
    let (hms, frac) = v.split_once('.').unwrap_or((v, ""));
    let mut parts = hms.split(':');
    let (h, m, s) = (digits_of(parts.next()?, 2)?, digits_of(parts.next()?, 2)?, digits_of(parts.next()?, 2)?);
    if parts.next().is_some() || h > 23 || m > 59 || s > 59 || frac.len() > 6 || (v.contains('.') && frac.is_empty()) {
        return None;
    }
    let mut micros = 0i64;
    for i in 0..6 {
        micros = micros * 10
            + frac.as_bytes().get(i).map_or(Some(0), |b| b.is_ascii_digit().then(|| i64::from(b - b'0')))?;
    }
    Some(((h * 60 + m) * 60 + s) * 1_000_000 + micros)
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` (or with `T`) as microseconds from 2000-01-01 00:00:00. With a
/// time zone (the target session's is UTC): also `Z`, `+HH`, `+HH:MM`, and none meaning UTC.
fn timestamp(v: &str, tz: bool) -> Option<i64> {
    if v.len() < 19 || !v.is_ascii() || !matches!(v.as_bytes()[10], b' ' | b'T') {
        return None;
    }
    let day = date(&v[..10])?;
    let rest = &v[11..];
    // The offset starts at the first sign or Z after the seconds.
    let (clock, offset) = match rest[8..].find(['+', '-', 'Z']) {
        Some(i) => rest.split_at(8 + i),
        None => (rest, ""),
    };
    let offset_secs = match (offset, tz) {
        ("", _) => 0,
        (_, false) => return None,
        ("Z", true) => 0,
        (o, true) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (h, m) = o[1..].split_once(':').unwrap_or((&o[1..], "00"));
            let (h, m) = (digits_of(h, 2)?, digits_of(m, 2)?);
            if h > 15 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    Some(day * 86_400_000_000 + time(clock)? - offset_secs * 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(kind: Kind, v: &str) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        value(kind, v, &mut out).unwrap().then_some(out)
    }

    #[test]
    fn integers_are_plain_digits_only() {
        assert_eq!(bytes(Kind::Int4, "-12"), Some((-12i32).to_be_bytes().to_vec()));
        assert_eq!(bytes(Kind::Int8, "0"), Some(0i64.to_be_bytes().to_vec()));
        for odd in ["+1", " 1", "1.0", "1e3", "007", "", "-", "2147483648"] {
            assert_eq!(bytes(Kind::Int4, odd), None, "{odd:?}");
        }
        assert_eq!(bytes(Kind::Int2, "32768"), None);
    }

    #[test]
    fn floats_refuse_what_postgres_would_refuse_or_spell_differently() {
        assert_eq!(bytes(Kind::Float8, "0.1"), Some(0.1f64.to_be_bytes().to_vec()));
        assert_eq!(bytes(Kind::Float4, "0.1"), Some(0.1f32.to_be_bytes().to_vec()));
        for odd in ["inf", "NaN", "1e400", "1e-400", " 1"] {
            assert_eq!(bytes(Kind::Float8, odd), None, "{odd:?}");
        }
        assert_eq!(bytes(Kind::Float4, "1e39"), None);
        assert_eq!(bytes(Kind::Float8, "0.0"), Some(0f64.to_be_bytes().to_vec()));
    }

    #[test]
    fn numerics_are_base_10000_digits_with_the_written_scale() {
        let enc = |v: &str| bytes(Kind::Numeric, v).unwrap();
        // 12345.678: digits 1, 2345, 6780; weight 1; scale 3.
        let mut want = Vec::new();
        for x in [3i16, 1, 0, 3, 1, 2345, 6780] {
            want.extend_from_slice(&x.to_be_bytes());
        }
        assert_eq!(enc("12345.678"), want);
        // -0.0005: digit 5 at weight -1, negative, scale 4.
        let neg = enc("-0.0005");
        assert_eq!(&neg[..8], &[0, 1, 0xff, 0xff, 0x40, 0, 0, 4]);
        assert_eq!(&neg[8..], &5i16.to_be_bytes());
        // Zero keeps its scale and is never negative.
        assert_eq!(enc("-0.00"), vec![0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(bytes(Kind::Numeric, "1e5"), None);
        assert_eq!(bytes(Kind::Numeric, "NaN"), None);
    }

    #[test]
    fn dates_and_timestamps_count_from_2000() {
        assert_eq!(date("2000-01-01"), Some(0));
        assert_eq!(date("1999-12-31"), Some(-1));
        assert_eq!(date("2024-03-01"), Some(8826));
        assert_eq!(date("2023-02-29"), None);
        assert_eq!(date("0000-01-01"), None);
        assert_eq!(time("23:59:59.5"), Some(86_399_500_000));
        assert_eq!(time("24:00:00"), None);
        assert_eq!(timestamp("2000-01-01 00:00:01", false), Some(1_000_000));
        assert_eq!(timestamp("2000-01-01T00:00:01.25", false), Some(1_250_000));
        assert_eq!(timestamp("2000-01-01 02:00:00+02", true), Some(0));
        assert_eq!(timestamp("2000-01-01 00:00:00-01:30", true), Some(5_400_000_000));
        assert_eq!(timestamp("2000-01-01 00:00:00Z", true), Some(0));
        // An offset in a column without a time zone is PostgreSQL's to read (it ignores it).
        assert_eq!(timestamp("2000-01-01 00:00:00+02", false), None);
        assert_eq!(timestamp("2000-01-01", false), None);
        assert_eq!(timestamp("2000-01-01 00:00:00.1234567", false), None);
    }

    #[test]
    fn rows_carry_their_field_count_lengths_and_nulls() {
        let mut out = Vec::new();
        let names = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        encode_row(
            &[Kind::Int4, Kind::Text, Kind::Jsonb],
            &names,
            &vec![Some("7".into()), None, Some("{}".into())],
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [&[0, 3][..], &[0, 0, 0, 4, 0, 0, 0, 7], &[0xff; 4], &[0, 0, 0, 3, 1, b'{', b'}']].concat());
        let err = encode_row(&[Kind::Int4], &names, &vec![Some("x".into())], &mut Vec::new()).unwrap_err();
        assert!(err.downcast_ref::<NotBinary>().is_some(), "{err}");
    }
}
