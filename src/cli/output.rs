//! Standard output and standard error, for every command.
//!
//! `println!`, `print!`, `eprintln!` and `eprint!` in `src/cli` are this
//! module's (see the macros at the top of `cli/mod.rs`), for two reasons:
//!
//! - A closed or failing standard output is not a crash. std's macros panic
//!   (exit 101) when a write fails, and Rust ignores SIGPIPE, so
//!   `provledger log | head` panicked. Here the first failed write is kept,
//!   later output is dropped, the command runs to its end (an append that
//!   was made stays made), and [`finish`] turns the failure into the exit
//!   code README documents: a closed pipe (EPIPE) changes nothing, as with
//!   `head`-friendly tools; any other write error is reported on standard
//!   error, and a command that had succeeded exits 1.
//! - No output carries secret key text: every line goes through
//!   [`redact_secret_keys`], wherever the text came from (an argument, a
//!   policy file, a manifest, a stored statement).

use std::fmt;
use std::io::{self, Write as _};
use std::process::ExitCode;
use std::sync::Mutex;

use provledger::core::keys::{contains_secret_key, redact_secret_keys};

use super::{CliError, Code};

/// The first failed write to standard output, if any.
static STDOUT_FAILURE: Mutex<Option<io::Error>> = Mutex::new(None);

fn render(args: fmt::Arguments<'_>, newline: bool) -> String {
    let mut text = redact_secret_keys(&fmt::format(args)).into_owned();
    if newline {
        text.push('\n');
    }
    text
}

/// Writes to standard output; after a failure, nothing more is written.
pub fn stdout(args: fmt::Arguments<'_>, newline: bool) {
    let mut failure = STDOUT_FAILURE.lock().unwrap_or_else(|e| e.into_inner());
    if failure.is_some() {
        return;
    }
    if let Err(e) = io::stdout().lock().write_all(render(args, newline).as_bytes()) {
        *failure = Some(e);
    }
}

/// Writes to standard error. A failure there has nowhere to be reported.
pub fn stderr(args: fmt::Arguments<'_>, newline: bool) {
    let _ = io::stderr().lock().write_all(render(args, newline).as_bytes());
}

/// The exit code of a command that ended with `code`, once its output is
/// flushed: see the module documentation.
pub fn finish(code: Code) -> ExitCode {
    let mut failure = STDOUT_FAILURE.lock().unwrap_or_else(|e| e.into_inner());
    if failure.is_none()
        && let Err(e) = io::stdout().lock().flush()
    {
        *failure = Some(e);
    }
    match failure.take() {
        None => code.exit(),
        Some(e) if e.kind() == io::ErrorKind::BrokenPipe => code.exit(),
        Some(e) => {
            let done = if code == Code::Ok { "; the command itself completed" } else { "" };
            stderr(format_args!("provledger: writing standard output: {e}{done}"), true);
            if code == Code::Ok { Code::Operational.exit() } else { code.exit() }
        }
    }
}

/// Refuses a command line carrying secret key text (exit 2) before it is
/// parsed, so that no parser quotes it back: keys are passed as files.
pub fn refuse_secret_arguments() -> Option<CliError> {
    let at = std::env::args_os().skip(1).position(|a| contains_secret_key(&a.to_string_lossy()))?;
    Some(
        CliError::new(
            Code::Usage,
            format!("argument {} is secret key text; it was not used, and is not shown", at + 1),
        )
        .hint("pass a secret key as a file (--key PATH); a key typed on a command line may be in the shell's history and the process list: consider rotating it"),
    )
}
