//! The `pgshift` binary: parse arguments, set up logging, run the command,
//! map the result to an exit code (0 success, 1 findings or a refused plan,
//! 2 an error of pgshift or its input).

use std::process::ExitCode;

use clap::Parser;

mod cli;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use cli::{Cli, Command};

/// Stack size of the threads that parse and analyze SQL. Parse trees of
/// deeply nested expressions are walked recursively (by libpg_query, by the
/// protobuf decoder and by the lock analysis), so a chain of 4,000 `+`
/// terms, close to the 10,000 nested messages libpg_query hands over, needs
/// more than the 8 MiB a main thread gets. Only the pages
/// used are backed by memory.
const STACK_SIZE: usize = 1 << 30;

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    let worker = std::thread::Builder::new()
        .name("pgshift".to_string())
        .stack_size(STACK_SIZE)
        .spawn(run);
    match worker.map(|handle| handle.join()) {
        Ok(Ok(code)) => code,
        Ok(Err(_)) => ExitCode::from(2),
        Err(error) => {
            eprintln!("error: cannot start the main thread: {error}");
            ExitCode::from(2)
        }
    }
}

/// Turns transparent huge pages off for this process. mimalloc requests
/// them, and each first touch of a huge page then makes 2 MiB resident: lint
/// of an 80,000-statement file peaked at 85 to 106 MB with them and at 54 to
/// 63 MB without, in the same time (measured on 2 vCPUs with the kernel's
/// `transparent_hugepage` set to `madvise`).
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes
    // no memory that Rust manages. A failure (an old kernel) only leaves
    // huge pages on, so its result is ignored.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn run() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(STACK_SIZE)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Lint(args) => cli::lint::run(args).await,
            Command::Rules(args) => cli::lint::list(args),
            Command::Explain(args) => cli::lint::explain(args),
            Command::Apply(args) => cli::apply::run(args, cli.quiet).await,
            Command::Status(args) => cli::apply::status(args).await,
            Command::Fix(args) => cli::fix::run(args).await,
            Command::Repair(args) => cli::apply::repair(args).await,
            Command::ConfirmCutover(args) => cli::apply::confirm_cutover(args).await,
        }
    });
    match result {
        Ok(code) => code,
        // A closed pipe (`pgshift ... | head`) is not an error.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            report_error(&error);
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Prints an error and its causes, one per line. A cause whose text the
/// lines above already contain is left out, and so is tokio-postgres's bare
/// "db error", whose details follow in its own cause.
fn report_error(error: &anyhow::Error) {
    let mut shown = error.to_string();
    eprintln!("error: {shown}");
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if shown.contains(&text) || text == "db error" {
            continue;
        }
        eprintln!("  caused by: {text}");
        shown.push_str(&text);
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;

    let default = match verbose {
        0 => "warn",
        1 => "pgshift=debug,warn",
        2 => "pgshift=trace,info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
}
