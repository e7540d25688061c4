//! The `authz` command: parses the command line and hands each subcommand to its module.

mod cli;
mod commands;
mod host;
mod outbound;
mod policy_set;
mod proxy;
mod report;
mod serve;
mod signing;
mod sources;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than the system allocator: the server and the proxy allocate small, short-lived
/// buffers per request (headers, JSON, audit lines), which glibc's malloc serves slowly from
/// several threads (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version go to stdout with status 0; usage errors exit 1, never 2, which
            // `authz eval` reserves for "deny".
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let outcome = match cli.command {
        cli::Command::Check(args) => commands::check::run(&args),
        cli::Command::Fmt(args) => commands::fmt::run(&args),
        cli::Command::Eval(args) => commands::eval::run(&args),
        cli::Command::Test(args) => commands::test::run(&args),
        cli::Command::Serve(args) => serve::run(&args),
        cli::Command::Proxy(args) => proxy::server::run(&args),
        cli::Command::Token(args) => commands::token::run(&args),
        cli::Command::Replay(args) => commands::replay::run(&args),
        cli::Command::Bundle(args) => commands::bundle::run(&args),
        #[cfg(feature = "cedar-import")]
        cli::Command::Import(args) => commands::import::run(&args),
    };
    ExitCode::from(outcome.code())
}
