//! `octobox-ship-bench`: shipping throughput from a local paging source into each sink,
//! against the source read alone, as one JSON line. See `octobox_tests::bench::shipping`.

use std::process::ExitCode;

use clap::Parser;
use octobox_tests::bench::shipping::{self, Options};
use tracing_subscriber::EnvFilter;

/// Shipper throughput, records per second, by sink.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Records in all.
    #[arg(long, default_value_t = 200_000)]
    records: u64,
    /// One-hour windows they are spread over.
    #[arg(long, default_value_t = 4)]
    windows: u64,
    /// Records per source page (and per collector batch).
    #[arg(long, default_value_t = 1000)]
    page_size: usize,
    /// Leave out the S3 sink (which needs moto in target/moto-venv).
    #[arg(long)]
    no_s3: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .init();
    let options = Options {
        records: args.records,
        windows: args.windows,
        page_size: args.page_size,
        s3: !args.no_s3,
    };
    match shipping::run(&options).await {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("octobox-ship-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
