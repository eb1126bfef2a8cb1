//! `gatewise`: the one binary. Parses arguments, reads files and the
//! environment, calls into the library crates and renders results. No
//! protocol logic lives here.

/// Prints a line, ignoring a closed stdout: a server must not die because
/// whoever started it stopped reading its output.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod authz;
mod browser;
mod calls;
mod clock;
mod config_file;
mod demo;
mod doctor;
mod input;
mod render;
mod runtime;
mod serve;

use clap::{Parser, Subcommand};

// The gateway allocates a little per request (headers, URIs, boxed bodies);
// mimalloc's thread-local free lists cost less than glibc's malloc there
// (bench/results.md has the figures).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

/// gatewise: an OAuth-aware API gateway and doctor.
///
/// When an OAuth client says "an invalid OAuth response was received",
/// `gatewise doctor` names the rule broken, the evidence, the likely cause
/// and the fix.
#[derive(Debug, Parser)]
#[command(name = "gatewise", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Diagnose OAuth responses, tokens and client error messages.
    #[command(subcommand)]
    Doctor(Box<doctor::Doctor>),
    /// Run the gateway: a reverse proxy that checks OAuth tokens per route
    /// and explains every refusal (RFC 6750 challenge + RFC 9457 problem).
    ///
    /// Reloads the configuration on SIGHUP; stops gracefully on SIGINT or
    /// SIGTERM. Logs go to stderr; set GATEWISE_LOG (e.g. `debug`) to filter.
    Serve(serve::Serve),
    /// Run the embedded OAuth authorization server (development and tests).
    ///
    /// `--dev` starts it with ready-made clients and prints their
    /// credentials and a curl that gets a token.
    Authz(authz::AuthzArgs),
    /// Start an authorization server, the gateway and an API in one process
    /// and print the curls that get a token, call the API, and fail.
    ///
    /// Nothing is written to disk. `--check` makes the calls itself and exits
    /// 0 only when each gives the expected answer.
    Demo(demo::Demo),
    /// Check or print configuration files.
    #[command(subcommand)]
    Config(serve::ConfigCommand),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with exit 0; usage errors exit 2.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Doctor(d) => doctor::run(*d),
        Command::Serve(s) => serve::run(s),
        Command::Demo(d) => demo::run(d),
        Command::Authz(a) => authz::run(a),
        Command::Config(c) => serve::config(c),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // A closed pipe (`gatewise ... | head`) is not an error worth a message.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("gatewise: {e:#}");
            }
            ExitCode::from(2)
        }
    }
}
