//! The `stack` binary: parse the command line, resolve it into settings,
//! run one command, map the outcome to an exit code. Loading, planning and
//! executing live in the `stack-core` library.

mod cli;
mod commands;
mod completions;
mod output;
mod settings;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::settings::Settings;

/// Rendering, diffing and the simulator build and drop JSON and YAML trees
/// from many threads: mimalloc spends a fraction of glibc malloc's time on it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A shell asking for completions (`STACK_COMPLETE=bash stack -- …`).
    clap_complete::CompleteEnv::with_factory(<Cli as clap::CommandFactory>::command)
        .var(completions::VARIABLE)
        .complete();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage(&error),
    };
    let color_requested = !cli.global.no_color && std::env::var_os("NO_COLOR").is_none();
    if !color_requested {
        anstream::ColorChoice::Never.write_global();
    }
    let masks = stack_core::mask::Masks::new(cli.global.show_secrets);
    crate::output::use_masks(&masks);
    let outcome = Settings::resolve(&cli, &masks).and_then(|settings| {
        crate::commands::run(&cli, &settings)
            .map_err(|errors| (errors, settings.color))
            .map_err(|(errors, _)| errors)
    });
    let code = match outcome {
        Ok(code) => code,
        Err(errors) => {
            crate::output::print_errors(&errors, color_requested);
            errors.exit_code()
        }
    };
    if std::env::var_os("STACK_REPORT_PEAK_MEMORY").is_some() {
        report_peak_memory();
    }
    ExitCode::from(code)
}

/// A command line clap refused (or `--help`/`--version`, which succeed).
/// Usage errors exit 1: exit 2 only ever means "differs".
fn usage(error: &clap::Error) -> ExitCode {
    let _ = error.print();
    if error.use_stderr() {
        ExitCode::from(stack_core::error::EXIT_ERROR)
    } else {
        ExitCode::SUCCESS
    }
}

/// For benchmarks: the process's peak resident memory, from the kernel.
fn report_peak_memory() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(line) = status.lines().find(|line| line.starts_with("VmHWM:")) {
        eprintln!("peak memory: {}", line.trim_start_matches("VmHWM:").trim());
    }
}
