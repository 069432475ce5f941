//! Reading `COPY ... TO STDOUT (FORMAT binary)` back as the very text PostgreSQL prints for each
//! value (DateStyle ISO; timestamptz in a UTC session), so a streamed query reads the same rows
//! whichever format carried them; the binary format costs the server much less than the text one.
//!
//! Only the types whose text can be rebuilt exactly are read this way (`Decoder::for_type`); a
//! query with any other column (floats, whose shortest spelling differs between PostgreSQL and
//! Rust, intervals, arrays, enums...) is read in the text format. It must never approximate.

use super::Row;
use tokio_postgres::types::Type;

/// How one column's binary value becomes PostgreSQL's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    Int2,
    Int4,
    Int8,
    Bool,
    /// text, varchar, char(n), name, json: the bytes are the text.
    Text,
    Jsonb,
    Numeric,
    Date,
    Time,
    Timestamp,
    /// Printed with `+00`: only for a session whose TimeZone is UTC.
    TimestamptzUtc,
}

impl Decoder {
    /// The decoder of a result column's type; `utc` says whether the session prints timestamptz
    /// in UTC.
    pub fn for_type(t: &Type, utc: bool) -> Option<Decoder> {
        Some(match *t {
            Type::INT2 => Decoder::Int2,
            Type::INT4 => Decoder::Int4,
            Type::INT8 => Decoder::Int8,
            Type::BOOL => Decoder::Bool,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON => Decoder::Text,
            Type::JSONB => Decoder::Jsonb,
            Type::NUMERIC => Decoder::Numeric,
            Type::DATE => Decoder::Date,
            Type::TIME => Decoder::Time,
            Type::TIMESTAMP => Decoder::Timestamp,
            Type::TIMESTAMPTZ if utc => Decoder::TimestamptzUtc,
            _ => return None,
        })
    }
}

/// Header signature of the binary format.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Rows of binary COPY output, fed in chunks as they arrive.
pub struct Reader {
    decoders: Vec<Decoder>,
    buf: Vec<u8>,
    header_read: bool,
    done: bool,
}

impl Reader {
    pub fn new(decoders: Vec<Decoder>) -> Reader {
        Reader { decoders, buf: Vec::new(), header_read: false, done: false }
    }

    /// Append `data` and move every whole row in the buffer to `rows`.
    pub fn feed(&mut self, data: &[u8], rows: &mut Vec<Row>) -> anyhow::Result<()> {
        self.buf.extend_from_slice(data);
        let mut at = 0;
        if !self.header_read {
            if self.buf.len() < SIGNATURE.len() + 8 {
                return Ok(());
            }
            if !self.buf.starts_with(SIGNATURE) {
                anyhow::bail!("COPY binary output without its signature");
            }
            let ext = i32::from_be_bytes(self.buf[15..19].try_into().expect("4 bytes")) as usize;
            if self.buf.len() < 19 + ext {
                return Ok(());
            }
            at = 19 + ext;
            self.header_read = true;
        }
        while !self.done {
            match self.row(at)? {
                Some((row, next)) => {
                    if let Some(row) = row {
                        rows.push(row);
                    } else {
                        self.done = true;
                    }
                    at = next;
                }
                None => break,
            }
        }
        self.buf.drain(..at);
        Ok(())
    }

    /// Whether the stream ended with its trailer and nothing is left over.
    pub fn finished(&self) -> bool {
        self.done && self.buf.is_empty()
    }

    /// The row starting at `at` and where the next one starts; Some(None) for the trailer; None
    /// when the row is not all there yet.
    #[allow(clippy::type_complexity)]
    fn row(&self, at: usize) -> anyhow::Result<Option<(Option<Row>, usize)>> {
        let b = &self.buf;
        let Some(count) = b.get(at..at + 2) else { return Ok(None) };
        let count = i16::from_be_bytes([count[0], count[1]]);
        if count == -1 {
            return Ok(Some((None, at + 2)));
        }
        if count as usize != self.decoders.len() {
            anyhow::bail!("COPY binary row of {count} fields for {} columns", self.decoders.len());
        }
        let mut pos = at + 2;
        let mut row = Vec::with_capacity(self.decoders.len());
        for d in &self.decoders {
            let Some(len) = b.get(pos..pos + 4) else { return Ok(None) };
            let len = i32::from_be_bytes(len.try_into().expect("4 bytes"));
            pos += 4;
            if len < 0 {
                row.push(None);
                continue;
            }
            let Some(value) = b.get(pos..pos + len as usize) else { return Ok(None) };
            row.push(Some(decode(*d, value)?));
            pos += len as usize;
        }
        Ok(Some((Some(row), pos)))
    }
}

fn be<const N: usize>(v: &[u8]) -> anyhow::Result<[u8; N]> {
    v.try_into().map_err(|_| anyhow::anyhow!("COPY binary value of {} bytes, expected {N}", v.len()))
}

/// PostgreSQL's text for one binary value.
pub fn decode(d: Decoder, v: &[u8]) -> anyhow::Result<String> {
    Ok(match d {
        Decoder::Int2 => i16::from_be_bytes(be(v)?).to_string(),
        Decoder::Int4 => i32::from_be_bytes(be(v)?).to_string(),
        Decoder::Int8 => i64::from_be_bytes(be(v)?).to_string(),
        Decoder::Bool => (if be::<1>(v)?[0] != 0 { "t" } else { "f" }).to_string(),
        Decoder::Text => utf8(v),
        Decoder::Jsonb => match v.split_first() {
            Some((1, text)) => utf8(text),
            _ => anyhow::bail!("jsonb binary value of an unknown version"),
        },
        Decoder::Numeric => numeric(v)?,
        Decoder::Date => date(i32::from_be_bytes(be(v)?)),
        Decoder::Time => clock(i64::from_be_bytes(be(v)?)),
        Decoder::Timestamp => timestamp(i64::from_be_bytes(be(v)?), ""),
        Decoder::TimestamptzUtc => timestamp(i64::from_be_bytes(be(v)?), "+00"),
    })
}

fn utf8(v: &[u8]) -> String {
    match std::str::from_utf8(v) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(v).into_owned(),
    }
}

/// numeric_out: sign, integer part, then exactly `dscale` fraction digits; NaN and infinities.
fn numeric(v: &[u8]) -> anyhow::Result<String> {
    if v.len() < 8 {
        anyhow::bail!("numeric binary value of {} bytes", v.len());
    }
    let word = |i: usize| i16::from_be_bytes([v[i], v[i + 1]]);
    let (ndigits, weight, sign, dscale) = (word(0) as usize, i32::from(word(2)), word(4) as u16, word(6) as u16);
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    if v.len() != 8 + 2 * ndigits {
        anyhow::bail!("numeric binary value of {} bytes for {ndigits} digits", v.len());
    }
    // The base-10000 digit at position `p` (0 is units, -1 the first after the point).
    let digit = |p: i32| -> i16 {
        let i = weight - p;
        if (0..ndigits as i32).contains(&i) {
            word(8 + 2 * i as usize)
        } else {
            0
        }
    };
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    } else {
        s.push_str(&digit(weight).to_string());
        for p in (0..weight).rev() {
            s.push_str(&format!("{:04}", digit(p)));
        }
    }
    if dscale > 0 {
        s.push('.');
        let mut frac = String::new();
        let mut p = -1;
        while frac.len() < dscale as usize {
            frac.push_str(&format!("{:04}", digit(p)));
            p -= 1;
        }
        frac.truncate(dscale as usize);
        s.push_str(&frac);
    }
    Ok(s)
}

/// Year, month, day of `days` after 2000-01-01 (proleptic Gregorian; Howard Hinnant's
/// civil_from_days).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 10957 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DD`, years before 1 as `YYYY-MM-DD BC` (the year 0 is 1 BC); the suffix is returned
/// apart because a timestamp puts its time zone before it.
fn ymd(days: i64) -> (String, &'static str) {
    let (y, m, d) = civil(days);
    if y <= 0 {
        (format!("{:04}-{m:02}-{d:02}", 1 - y), " BC")
    } else {
        (format!("{y:04}-{m:02}-{d:02}"), "")
    }
}

fn date(days: i32) -> String {
    match days {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        _ => {
            let (date, era) = ymd(i64::from(days));
            format!("{date}{era}")
        }
    }
}

/// `HH:MM:SS`, then the microseconds without trailing zeros.
fn clock(micros: i64) -> String {
    let (secs, frac) = (micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000));
    let mut s = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if frac != 0 {
        let f = format!("{frac:06}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s
}

fn timestamp(micros: i64, zone: &str) -> String {
    match micros {
        i64::MAX => "infinity".into(),
        i64::MIN => "-infinity".into(),
        _ => {
            let day = micros.div_euclid(86_400_000_000);
            let (date, era) = ymd(day);
            format!("{date} {}{zone}{era}", clock(micros.rem_euclid(86_400_000_000)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(ndigits: i16, weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> String {
        let mut v = Vec::new();
        for w in [ndigits as u16, weight as u16, sign, dscale].into_iter().chain(digits.iter().map(|d| *d as u16)) {
            v.extend_from_slice(&w.to_be_bytes());
        }
        numeric(&v).unwrap()
    }

    #[test]
    fn numerics_print_as_numeric_out_does() {
        assert_eq!(num(3, 1, 0, 3, &[1, 2345, 6780]), "12345.678");
        assert_eq!(num(1, -1, 0x4000, 4, &[5]), "-0.0005");
        assert_eq!(num(0, 0, 0, 2, &[]), "0.00");
        assert_eq!(num(1, 1, 0, 0, &[1]), "10000");
        assert_eq!(num(1, 0, 0, 2, &[12]), "12.00");
        assert_eq!(num(1, -2, 0, 10, &[7]), "0.0000000700");
        assert_eq!(num(0, 0, 0xC000, 0, &[]), "NaN");
    }

    #[test]
    fn dates_and_times_print_in_iso_style() {
        assert_eq!(date(0), "2000-01-01");
        assert_eq!(date(-1), "1999-12-31");
        assert_eq!(date(8826), "2024-03-01");
        // 0001-01-01 is day -730119; the day before is 1 BC.
        assert_eq!(date(-730119), "0001-01-01");
        assert_eq!(date(-730120), "0001-12-31 BC");
        assert_eq!(date(i32::MAX), "infinity");
        assert_eq!(clock(86_399_500_000), "23:59:59.5");
        assert_eq!(clock(0), "00:00:00");
        assert_eq!(timestamp(1_250_000, ""), "2000-01-01 00:00:01.25");
        assert_eq!(timestamp(-1, "+00"), "1999-12-31 23:59:59.999999+00");
        assert_eq!(timestamp(-730120 * 86_400_000_000, "+00"), "0001-12-31 00:00:00+00 BC");
        assert_eq!(timestamp(i64::MIN, ""), "-infinity");
    }

    #[test]
    fn rows_are_read_across_chunks_up_to_the_trailer() {
        let mut stream = SIGNATURE.to_vec();
        stream.extend_from_slice(&[0; 8]);
        for (n, text) in [(7i32, Some("x\ty")), (-3, None)] {
            stream.extend_from_slice(&2i16.to_be_bytes());
            stream.extend_from_slice(&4i32.to_be_bytes());
            stream.extend_from_slice(&n.to_be_bytes());
            match text {
                Some(t) => {
                    stream.extend_from_slice(&(t.len() as i32).to_be_bytes());
                    stream.extend_from_slice(t.as_bytes());
                }
                None => stream.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        stream.extend_from_slice(&(-1i16).to_be_bytes());
        let mut reader = Reader::new(vec![Decoder::Int4, Decoder::Text]);
        let mut rows = Vec::new();
        for chunk in stream.chunks(5) {
            reader.feed(chunk, &mut rows).unwrap();
        }
        assert!(reader.finished());
        assert_eq!(rows, vec![vec![Some("7".into()), Some("x\ty".into())], vec![Some("-3".into()), None]]);
    }
}
