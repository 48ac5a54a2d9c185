//! Logs go to a daily-rotated file under the data directory (the terminal
//! belongs to the till's screen) and, for headless commands, to stderr.
//! Read-only commands (`scanpay journal`) log to stderr alone: viewing a
//! journal creates no folder and no file. Payment codes are masked by their
//! own `Display`; keys never reach a field.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{Builder, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

/// Keeps the file writer flushing; drop it last.
pub struct LogGuard(#[allow(dead_code)] WorkerGuard);

/// `file_level` is the configured level (or a filter); `stderr_level`, when
/// given, also prints to stderr at that level. `RUST_LOG` overrides both.
pub fn init(dir: &Path, file_level: &str, stderr_level: Option<&str>) -> Result<LogGuard, String> {
    std::fs::create_dir_all(dir).map_err(|e| {
        format!(
            "log.dir: cannot create {}: {e} (check the permissions of its parent)",
            dir.display()
        )
    })?;
    let appender = Builder::new()
        .rotation(Rotation::DAILY)
        .filename_prefix("scanpay")
        .filename_suffix("log")
        .max_log_files(31)
        .build(dir)
        .map_err(|e| format!("log.dir: cannot write logs in {}: {e}", dir.display()))?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let file = fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_filter(filter(file_level)?);
    let stderr = match stderr_level {
        Some(level) => Some(
            fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_filter(filter(level)?),
        ),
        None => None,
    };
    tracing_subscriber::registry()
        .with(file)
        .with(stderr)
        .try_init()
        .map_err(|e| format!("logging was already set up: {e}"))?;
    Ok(LogGuard(guard))
}

/// Logs to stderr only, at `level` (`RUST_LOG` overrides): touches no file.
pub fn init_stderr(level: &str) -> Result<(), String> {
    tracing_subscriber::registry()
        .with(
            fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_filter(filter(level)?),
        )
        .try_init()
        .map_err(|e| format!("logging was already set up: {e}"))
}

fn filter(level: &str) -> Result<EnvFilter, String> {
    EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .map_err(|e| {
            format!("log level {level:?} is not valid ({e}): use error, warn, info, debug or trace")
        })
}
