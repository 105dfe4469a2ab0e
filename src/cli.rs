//! The command line (clap derive only; behaviour lives in the library).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "airlock",
    version,
    about = "An HTTPS proxy that puts a human in front of dangerous cloud API calls"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a CA (certs/ca.pem, certs/ca.key) and a commented airlock.yaml; print the
    /// environment agents need.
    Init {
        /// Directory to set up.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Replace an existing CA (agents must then trust the new ca.pem).
        #[arg(long)]
        force: bool,
    },
    /// Run the proxy. Without --config: ./airlock.yaml if present; if neither it nor a CA
    /// exists, set up the defaults in the working directory first.
    Serve {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Show how Airlock classifies requests: one JSON line per request.
    Explain {
        /// A raw HTTP/1.1 request (or, with --jsonl, a JSON Lines file); `-` or nothing
        /// reads standard input.
        file: Option<PathBuf>,
        /// Input is JSON Lines of {"method","url","headers":{…},"body_b64"}.
        #[arg(long)]
        jsonl: bool,
    },
    /// Work with the configuration file.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file and report every error with its line.
    Check {
        #[arg(long, short, default_value = "airlock.yaml")]
        config: PathBuf,
    },
}
