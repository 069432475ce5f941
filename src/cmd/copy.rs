//! `rehearse copy --from URL --to URL`: tables and rows from one database or folder into another,
//! across engines, verified table by table. The work is in `crate::copy`.

use crate::copy::{self, Options};

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  rehearse copy --from sqlite:///srv/eden/eden.db --to postgres://eden@127.0.0.1/eden\n  \
rehearse copy --from postgres://eden@127.0.0.1/eden --to dir:/var/tmp/eden-extract\n  \
rehearse copy --from dir:/var/tmp/eden-extract --to mysql://eden@127.0.0.1/eden --truncate\n\n\
Exit codes: 0 copied and verified, 2 bad URL or flag, 4 verification found a difference, 5 refused (target table holds rows, or source equals target)."
)]
pub struct Args {
    /// Where the data comes from: sqlite://FILE, postgres://..., mysql://... or dir:PATH (opened read-only)
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// Where it goes: sqlite://FILE (created when missing), postgres://..., mysql://... or dir:PATH
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Copy only these tables (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub tables: Vec<String>,
    /// Empty target tables that already hold rows (otherwise the copy is refused)
    #[arg(long)]
    pub truncate: bool,
    /// Rows per page read from the source and per INSERT
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub batch: usize,
    /// PostgreSQL target: text columns to turn into jsonb: auto (those holding only JSON objects or
    /// arrays), none, or a list table.column,...
    #[arg(long, default_value = "none", value_name = "auto|none|T.C,...")]
    pub json_columns: copy::JsonColumns,
    /// Print the result as JSON on stdout
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let opts = Options {
        from: a.from,
        to: a.to,
        tables: a.tables,
        truncate: a.truncate,
        batch: a.batch,
        progress: true,
        json_columns: a.json_columns,
    };
    let outcome = copy::copy(&opts)?;
    if a.format == "json" {
        let v = serde_json::json!({ "verified": outcome.verified(), "tables": outcome.tables, "notes": outcome.notes });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        outcome.render(&mut std::io::stdout().lock())?;
    }
    Ok(copy::exit_code(&outcome))
}
