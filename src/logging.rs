//! Logs go to one file per store day under the data directory (the terminal
//! belongs to the till's screen) and, for headless commands, to stderr.
//! Read-only commands (`scanpay journal`, `config`, `check`, `scan-test
//! --list`) log to stderr alone: they create no folder and no file. Payment
//! codes are masked by their own `Display`; keys never reach a field.
//!
//! A file is named by the store's date in `till.time_zone`
//! (`scanpay.2026-11-22.log`), not UTC's: in Beijing a UTC-named file would
//! change at 08:00, splitting a shop's morning over two files. The newest
//! [`KEEP_FILES`] are kept.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

/// Keeps the file writer flushing; drop it last.
pub struct LogGuard(#[allow(dead_code)] WorkerGuard);

/// How many daily files are kept: a month.
pub const KEEP_FILES: usize = 31;

/// The log file of the store day `at` falls on.
pub fn file_name(at: OffsetDateTime, offset: UtcOffset) -> String {
    let day = at.to_offset(offset).date();
    let format = format_description!("[year]-[month]-[day]");
    // A Date always formats with this description.
    format!("scanpay.{}.log", day.format(&format).unwrap_or_default())
}

/// A writer that appends to the file of the current store day, switching
/// files when the day changes and removing all but the newest [`KEEP_FILES`].
pub struct StoreDayFile {
    dir: PathBuf,
    offset: UtcOffset,
    clock: Box<dyn Fn() -> OffsetDateTime + Send>,
    current: Option<(Date, File)>,
}

impl StoreDayFile {
    /// Opens today's file in `dir` (which must exist) now, so a folder that
    /// cannot be written is said at start.
    pub fn new(dir: &Path, offset: UtcOffset) -> io::Result<Self> {
        Self::with_clock(dir, offset, Box::new(OffsetDateTime::now_utc))
    }

    pub fn with_clock(
        dir: &Path,
        offset: UtcOffset,
        clock: Box<dyn Fn() -> OffsetDateTime + Send>,
    ) -> io::Result<Self> {
        let mut file = Self {
            dir: dir.to_path_buf(),
            offset,
            clock,
            current: None,
        };
        file.file()?;
        Ok(file)
    }

    fn file(&mut self) -> io::Result<&mut File> {
        let now = (self.clock)();
        let day = now.to_offset(self.offset).date();
        if self.current.as_ref().is_none_or(|(open, _)| *open != day) {
            let path = self.dir.join(file_name(now, self.offset));
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            self.current = Some((day, file));
            self.prune();
        }
        Ok(&mut self.current.as_mut().expect("opened above").1)
    }

    /// Removes the oldest log files beyond [`KEEP_FILES`]; the names sort by date.
    fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut logs: Vec<String> = entries
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| is_log_name(name))
            .collect();
        logs.sort();
        let excess = logs.len().saturating_sub(KEEP_FILES);
        for name in &logs[..excess] {
            let _ = std::fs::remove_file(self.dir.join(name));
        }
    }
}

/// `scanpay.YYYY-MM-DD.log`, and nothing else in the folder.
fn is_log_name(name: &str) -> bool {
    name.strip_prefix("scanpay.")
        .and_then(|rest| rest.strip_suffix(".log"))
        .is_some_and(|day| {
            day.len() == 10
                && day.bytes().enumerate().all(|(i, b)| {
                    if i == 4 || i == 7 {
                        b == b'-'
                    } else {
                        b.is_ascii_digit()
                    }
                })
        })
}

impl Write for StoreDayFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file()?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.current {
            Some((_, file)) => file.flush(),
            None => Ok(()),
        }
    }
}

/// `file_level` is the configured level (or a filter); `stderr_level`, when
/// given, also prints to stderr at that level. `RUST_LOG` overrides both.
/// Files are named by the store's day at `offset` (`till.time_zone`).
pub fn init(
    dir: &Path,
    file_level: &str,
    stderr_level: Option<&str>,
    offset: UtcOffset,
) -> Result<LogGuard, String> {
    std::fs::create_dir_all(dir).map_err(|e| {
        format!(
            "log.dir: cannot create {}: {e} (check the permissions of its parent)",
            dir.display()
        )
    })?;
    let appender = StoreDayFile::new(dir, offset)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use time::macros::{datetime, offset};

    #[test]
    fn a_file_is_named_by_the_store_day_not_utc() {
        // 20:30 UTC on the 22nd is 04:30 on the 23rd in Beijing.
        let at = datetime!(2026-11-22 20:30 UTC);
        assert_eq!(file_name(at, offset!(+8)), "scanpay.2026-11-23.log");
        assert_eq!(file_name(at, offset!(UTC)), "scanpay.2026-11-22.log");
        // 03:00 UTC on the 23rd is still the 22nd in New York.
        let at = datetime!(2026-11-23 03:00 UTC);
        assert_eq!(file_name(at, offset!(-5)), "scanpay.2026-11-22.log");
    }

    #[test]
    fn the_writer_changes_file_at_local_midnight_and_keeps_a_month() {
        let dir = tempfile::tempdir().unwrap();
        for day in 1..=40 {
            std::fs::write(dir.path().join(format!("scanpay.2026-09-{day:02}.log")), "").unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let now = Arc::new(Mutex::new(datetime!(2026-11-22 15:59:59 UTC)));
        let clock = {
            let now = now.clone();
            Box::new(move || *now.lock().unwrap())
        };
        let mut writer = StoreDayFile::with_clock(dir.path(), offset!(+8), clock).unwrap();
        writer.write_all(b"before midnight\n").unwrap();
        // 16:00 UTC is midnight in Beijing: a new file, though UTC's day is the same.
        *now.lock().unwrap() = datetime!(2026-11-22 16:00 UTC);
        writer.write_all(b"after midnight\n").unwrap();
        writer.flush().unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(read("scanpay.2026-11-22.log"), "before midnight\n");
        assert_eq!(read("scanpay.2026-11-23.log"), "after midnight\n");
        let mut logs: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| is_log_name(n))
            .collect();
        logs.sort();
        assert_eq!(logs.len(), KEEP_FILES, "{logs:?}");
        assert_eq!(logs.last().unwrap(), "scanpay.2026-11-23.log");
        assert!(dir.path().join("notes.txt").exists(), "other files stay");
    }
}
