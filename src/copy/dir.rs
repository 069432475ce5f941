//! A folder as either end of a copy (`dir:PATH`): `schema.yaml` (the source's neutral Schema, whose
//! `engine` says how the values are spelled) and one JSON-lines file per table, each line an array
//! of the row's values as text or null. Files are read and written line by line, never whole.

use crate::engine::Row;
use crate::schema::Schema;
use anyhow::Context;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

pub const SCHEMA_FILE: &str = "schema.yaml";

/// The file of a table: its name with anything but `[A-Za-z0-9_.-]` percent-encoded.
pub fn table_file(dir: &Path, table: &str) -> PathBuf {
    let mut name = String::new();
    for b in table.bytes() {
        if b.is_ascii_alphanumeric() || b"_-".contains(&b) || (b == b'.' && !name.is_empty()) {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    dir.join(format!("{name}.jsonl"))
}

pub fn load_schema(dir: &Path) -> anyhow::Result<Schema> {
    let path = dir.join(SCHEMA_FILE);
    let text = fs_err::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_yaml::from_str(&text).with_context(|| format!("{} is not a rehearse schema", path.display()))
}

pub fn save_schema(dir: &Path, schema: &Schema) -> anyhow::Result<()> {
    fs_err::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    fs_err::write(dir.join(SCHEMA_FILE), serde_yaml::to_string(schema)?)
        .with_context(|| format!("cannot write {}", dir.join(SCHEMA_FILE).display()))
}

/// Rows of one table file in pages of at most `batch`, handed to `f` one page at a time.
pub fn read_table(
    dir: &Path,
    table: &str,
    width: usize,
    batch: usize,
    f: &mut dyn FnMut(Vec<Row>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let path = table_file(dir, table);
    let file = std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut page = Vec::with_capacity(batch);
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(&line)
            .with_context(|| format!("{} line {}: not a JSON array of strings and nulls", path.display(), n + 1))?;
        if row.len() != width {
            anyhow::bail!("{} line {}: {} values for {width} columns", path.display(), n + 1, row.len());
        }
        page.push(row);
        if page.len() >= batch {
            f(std::mem::take(&mut page))?;
        }
    }
    if !page.is_empty() {
        f(page)?;
    }
    Ok(())
}

/// A table file being written.
pub struct Writer {
    out: BufWriter<std::fs::File>,
}

impl Writer {
    pub fn create(dir: &Path, table: &str) -> anyhow::Result<Writer> {
        let path = table_file(dir, table);
        let file = std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Writer { out: BufWriter::new(file) })
    }

    pub fn write(&mut self, rows: &[Row]) -> anyhow::Result<()> {
        for r in rows {
            serde_json::to_writer(&mut self.out, r)?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> anyhow::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        Ok(())
    }
}

/// Whether a table file holds any row.
pub fn has_rows(dir: &Path, table: &str) -> bool {
    fs_err::metadata(table_file(dir, table)).map(|m| m.len() > 0).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_files_never_leave_the_folder() {
        let d = Path::new("/x");
        assert_eq!(table_file(d, "../etc/passwd"), Path::new("/x/%2E.%2Fetc%2Fpasswd.jsonl"));
        assert_eq!(table_file(d, "org_office"), Path::new("/x/org_office.jsonl"));
    }
}
