//! `scanpay journal`: a day's orders (or a range of days') as CSV or JSON, for
//! the manager's closing review or the accountant, and the checks before the
//! journal screen opens on its own.
//!
//! Both read the journal read-only, so they can run while the till takes
//! payments (in WAL mode a reader never blocks the till's writes) or on a
//! read-only copy; neither writes nor creates a file beside the journal.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};

use super::Exit;
pub use crate::journal::ExportFormat as Format;
use crate::journal::{ExportWriter, Journal, JournalError, OrderRefunds, OrderRow, day_bounds};

pub struct ExportArgs {
    /// The (first) day, YYYY-MM-DD; `None` is today in the store's time zone.
    pub date: Option<String>,
    /// The last day of a range, inclusive; `None` exports one day.
    pub to: Option<String>,
    pub format: Format,
    /// CSV for a double-click in Excel: a BOM, ids kept as text.
    pub excel: bool,
    /// `None` writes to stdout.
    pub output: Option<PathBuf>,
}

/// Why an export failed; [`ExportError::exit`] is its exit code.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("--{flag} {input:?} is not a date ({cause}): use YYYY-MM-DD, e.g. 2026-11-22")]
    BadDate {
        flag: &'static str,
        input: String,
        cause: time::error::Parse,
    },
    #[error(
        "--to {to} is before --date {from}: give the first day with --date and the last with --to"
    )]
    Backwards { from: Date, to: Date },
    #[error(
        "no journal at {}: nothing has been recorded on this till yet, or journal.path points elsewhere; point it at the till's journal with journal.path in the file given to --config (or SCANPAY_JOURNAL_PATH)",
        .0.display()
    )]
    NoJournal(PathBuf),
    /// The journal exists but cannot be opened; the message says why.
    #[error("{0}")]
    Open(JournalError),
    /// The journal opened but reading a day failed half-way (nothing is
    /// written to --output then).
    #[error("reading the orders of {day}: {cause}")]
    Read { day: Date, cause: String },
    #[error(
        "cannot write the export to {} ({cause}): check that the folder exists, is writable and has space, or choose another --output",
        path.display()
    )]
    Write { path: PathBuf, cause: io::Error },
    #[error(
        "cannot write the export to stdout ({0}): write it to a file with --output FILE instead"
    )]
    Stdout(io::Error),
    /// `--output` names something that is not a plain file; it is left alone.
    #[error(
        "--output {}: {what}; an export replaces only a regular file and never writes through a link: give the path of a new or existing regular file (to send the export elsewhere, leave --output out and redirect stdout)",
        path.display()
    )]
    Target { path: PathBuf, what: String },
}

impl ExportError {
    pub fn exit(&self) -> Exit {
        match self {
            Self::BadDate { .. } | Self::Backwards { .. } | Self::Target { .. } => Exit::BadInput,
            Self::NoJournal(_) | Self::Open(_) => Exit::Config,
            Self::Read { .. } | Self::Write { .. } | Self::Stdout(_) => Exit::Internal,
        }
    }
}

/// Runs the export and prints the outcome on stderr: 0 done, 1 the export or a
/// read failed, 2 bad arguments, 3 the journal cannot be opened.
pub fn export(args: ExportArgs, journal_path: &Path, offset: UtcOffset) -> Exit {
    match run(&args, journal_path, offset) {
        Ok(count) => {
            if let Some(path) = &args.output {
                eprintln!(
                    "scanpay journal: {count} orders written to {}",
                    path.display()
                );
            }
            // Exit code 0, named for `scanpay pay`.
            Exit::OK
        }
        Err(e) => {
            eprintln!("scanpay journal: {e}");
            e.exit()
        }
    }
}

/// The export itself: how many orders were written.
pub fn run(
    args: &ExportArgs,
    journal_path: &Path,
    offset: UtcOffset,
) -> Result<usize, ExportError> {
    let days = Days::of(args.date.as_deref(), args.to.as_deref(), offset, args.excel)?;
    let journal = open(journal_path)?;
    let read = |from, to| journal_day(&journal, from, to);
    days.to_output(read, args.format, args.output.as_deref())
}

/// `scanpay journal --check`: SQLite's full integrity check, read-only. Says
/// "ok" or lists the damage, with what to do, on stdout. Exit 0 sound, 1
/// damaged, 3 the journal cannot be opened (missing, unreadable, not a journal).
pub fn check(journal_path: &Path) -> Exit {
    let journal = match open(journal_path) {
        Ok(journal) => journal,
        Err(ExportError::Open(e @ JournalError::Damaged { .. })) => {
            super::err(format_args!("scanpay journal --check: {e}"));
            return Exit::Internal;
        }
        Err(e) => {
            super::err(format_args!("scanpay journal --check: {e}"));
            return e.exit();
        }
    };
    let problems = match journal.integrity_problems() {
        Ok(problems) => problems,
        Err(e @ JournalError::Damaged { .. }) => {
            super::err(format_args!("scanpay journal --check: {e}"));
            return Exit::Internal;
        }
        Err(e) => {
            super::err(format_args!("scanpay journal --check: {e}"));
            return Exit::Config;
        }
    };
    if problems.is_empty() {
        super::out(format_args!("{}: ok", journal_path.display()));
        return Exit::OK;
    }
    super::out(format_args!(
        "{}: damaged, {} problem(s) found by SQLite's integrity check:",
        journal_path.display(),
        problems.len()
    ));
    for problem in &problems {
        super::out(format_args!("  {problem}"));
    }
    let e = JournalError::Damaged {
        path: journal_path.into(),
        problem: format!("{} problem(s) listed above", problems.len()),
    };
    super::err(format_args!("scanpay journal --check: {e}"));
    Exit::Internal
}

/// The day the journal screen opens on (`--date`, or today in the store's
/// time zone), once the journal is known to open read-only: what is wrong is
/// said in plain text, before the screen takes the terminal.
pub fn screen_day(
    date: Option<&str>,
    journal_path: &Path,
    offset: UtcOffset,
) -> Result<Date, ExportError> {
    let day = date_or_today(date, offset)?;
    open(journal_path).map(drop)?;
    Ok(day)
}

/// `--date`, or the store's today when it is left out.
fn date_or_today(date: Option<&str>, offset: UtcOffset) -> Result<Date, ExportError> {
    match date {
        Some(text) => parse_date("date", text),
        None => Ok(OffsetDateTime::now_utc().to_offset(offset).date()),
    }
}

fn open(journal_path: &Path) -> Result<Journal, ExportError> {
    // Checked here because SQLite reports a missing file as a permission problem.
    if let Ok(false) = journal_path.try_exists() {
        return Err(ExportError::NoJournal(journal_path.into()));
    }
    Journal::open_read_only(journal_path).map_err(ExportError::Open)
}

/// A `--date`-style day, YYYY-MM-DD.
pub fn parse_date(flag: &'static str, input: &str) -> Result<Date, ExportError> {
    Date::parse(input, format_description!("[year]-[month]-[day]")).map_err(|cause| {
        ExportError::BadDate {
            flag,
            input: input.into(),
            cause,
        }
    })
}

/// The local days `first..=last` of an export.
pub(crate) struct Days {
    pub first: Date,
    pub last: Date,
    pub offset: UtcOffset,
    pub excel: bool,
}

/// One day's orders created in `[from_ms, to_ms)`, oldest first, with what
/// their refunds add up to; a failure is said in words.
pub(crate) type DayOrders = Result<(Vec<OrderRow>, OrderRefunds), String>;

impl Days {
    /// The days `--date` and `--to` name (`--date` left out: today at `offset`).
    pub(crate) fn of(
        date: Option<&str>,
        to: Option<&str>,
        offset: UtcOffset,
        excel: bool,
    ) -> Result<Self, ExportError> {
        let first = date_or_today(date, offset)?;
        let last = match to {
            Some(text) => parse_date("to", text)?,
            None => first,
        };
        if last < first {
            return Err(ExportError::Backwards {
                from: first,
                to: last,
            });
        }
        Ok(Self {
            first,
            last,
            offset,
            excel,
        })
    }

    /// Exports day by day, so a year's export holds one day's orders in
    /// memory; `read(from_ms, to_ms)` reads one day.
    pub(crate) fn write<W: Write>(
        &self,
        mut read: impl FnMut(i64, i64) -> DayOrders,
        format: Format,
        out: W,
        failed: impl Fn(io::Error) -> ExportError,
    ) -> Result<(usize, W), ExportError> {
        let mut export =
            ExportWriter::with_excel(format, self.excel, self.offset, out).map_err(&failed)?;
        let mut count = 0;
        let days = std::iter::successors(Some(self.first), |day| day.next_day());
        for day in days.take_while(|day| *day <= self.last) {
            let (from, to) = day_bounds(day, self.offset);
            let (orders, refunds) =
                read(from, to).map_err(|cause| ExportError::Read { day, cause })?;
            export.write(&orders, &refunds).map_err(&failed)?;
            count += orders.len();
        }
        Ok((count, export.finish().map_err(failed)?))
    }
}

impl Days {
    /// [`Days::write`] to `output`, complete or not at all, or to stdout.
    pub(crate) fn to_output(
        &self,
        read: impl FnMut(i64, i64) -> DayOrders,
        format: Format,
        output: Option<&Path>,
    ) -> Result<usize, ExportError> {
        match output {
            None => {
                let stdout = BufWriter::new(io::stdout().lock());
                self.write(read, format, stdout, ExportError::Stdout)
                    .map(|(count, _)| count)
            }
            Some(path) => {
                write_atomically(path, |file, failed| self.write(read, format, file, failed))
            }
        }
    }
}

/// A journal's day for [`Days::write`]: one aggregate query for the
/// refunds, however many orders the day has.
fn journal_day(journal: &Journal, from: i64, to: i64) -> DayOrders {
    let orders = journal
        .orders_between(from, to)
        .map_err(|e| e.to_string())?;
    let refunds = journal
        .refunds_of_orders_between(from, to)
        .map_err(|e| e.to_string())?;
    Ok((orders, refunds))
}

/// What is at `--output` must be nothing yet, or a regular file (which the
/// export replaces). A rename onto a FIFO, a device node (as root, even
/// `/dev/full`), a socket or a symlink would replace that with a regular file,
/// so they are refused, as is a directory. The regular file's permissions go
/// to the replacement.
fn check_target(path: &Path) -> Result<Option<fs::Permissions>, ExportError> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(cause) => {
            return Err(ExportError::Write {
                path: path.into(),
                cause,
            });
        }
    };
    let kind = meta.file_type();
    let what = if kind.is_file() {
        return Ok(Some(meta.permissions()));
    } else if kind.is_symlink() {
        match fs::read_link(path) {
            Ok(to) => format!("is a symbolic link (to {})", to.display()),
            Err(_) => "is a symbolic link".to_string(),
        }
    } else if kind.is_dir() {
        "is a directory".to_string()
    } else if kind.is_fifo() {
        "is a named pipe (FIFO)".to_string()
    } else if kind.is_char_device() || kind.is_block_device() {
        "is a device".to_string()
    } else if kind.is_socket() {
        "is a socket".to_string()
    } else {
        "is not a regular file".to_string()
    };
    Err(ExportError::Target {
        path: path.into(),
        what,
    })
}

/// `text`, whole, to `output` (complete or not at all) or to stdout.
pub(crate) fn text_to_output(text: &str, output: Option<&Path>) -> Result<(), ExportError> {
    match output {
        None => {
            let mut stdout = io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(ExportError::Stdout)
        }
        Some(path) => write_atomically(path, |mut file, failed| {
            file.write_all(text.as_bytes()).map_err(failed)?;
            Ok((1, file))
        })
        .map(drop),
    }
}

/// Writes into a temporary file next to `path` and renames it into place only
/// once complete and on disk, so a failed or interrupted export never leaves a
/// file that looks finished (nor touches an earlier export at `path`).
pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(
        BufWriter<File>,
        &dyn Fn(io::Error) -> ExportError,
    ) -> Result<(usize, BufWriter<File>), ExportError>,
) -> Result<usize, ExportError> {
    let failed = |cause| ExportError::Write {
        path: path.into(),
        cause,
    };
    let Some(name) = path.file_name() else {
        let cause = io::Error::new(io::ErrorKind::InvalidInput, "not a file name");
        return Err(failed(cause));
    };
    // The same folder, so the rename stays on one filesystem and is atomic;
    // hidden and marked partial in case the process is killed mid-way.
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.partial", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let keep = check_target(path)?;
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(failed)?;
    let result = write(BufWriter::new(file), &failed).and_then(|(count, out)| {
        let file = out.into_inner().map_err(|e| failed(e.into_error()))?;
        if let Some(permissions) = keep {
            file.set_permissions(permissions).map_err(failed)?;
        }
        file.sync_all().map_err(failed)?;
        // Last look: a FIFO or link put there while writing is left alone.
        check_target(path)?;
        fs::rename(&temp, path).map_err(failed)?;
        Ok(count)
    });
    if result.is_err() {
        // Best effort: the error being reported matters more than this one.
        let _ = fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use tempfile::TempDir;
    use time::Duration;
    use time::macros::{datetime, offset};

    use super::*;
    use crate::domain::{Fen, TillId};
    use crate::journal::{EventRecord, FinalRecord, NewOrder, OrderState};

    const BEIJING: UtcOffset = offset!(+8);

    fn args(date: Option<&str>, to: Option<&str>, output: Option<PathBuf>) -> ExportArgs {
        ExportArgs {
            date: date.map(String::from),
            to: to.map(String::from),
            format: Format::Csv,
            excel: false,
            output,
        }
    }

    /// A journal with one paid order at each of `times`.
    fn journal_with(times: &[OffsetDateTime]) -> (TempDir, PathBuf) {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("journal.sqlite3");
        let mut journal = Journal::open(&path).unwrap();
        let till = TillId::parse("T01").unwrap();
        for &now in times {
            let new = NewOrder {
                till: &till,
                total_fee: Fen(100),
                body: "Coffee",
                auth_code_masked: "**************6076".into(),
                now,
                local_offset: BEIJING,
            };
            let (id, _) = journal.open_order(&new).unwrap();
            let at = now + Duration::seconds(2);
            let outcome = FinalRecord {
                state: OrderState::Paid,
                transaction_id: Some("4200001234202611221234567890".into()),
                err_code: None,
                message: None,
                at,
            };
            let event = EventRecord {
                at,
                since_t0_ms: Some(2_000),
                summary: "paid".into(),
                event: crate::payment::Event::Finished {
                    state: "paid".into(),
                    err_code: None,
                    transaction_id: None,
                },
            };
            journal.finish(id, &outcome, &event).unwrap();
        }
        (dir, path)
    }

    fn lines(path: &Path) -> Vec<String> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_malformed_date_is_bad_input_naming_the_problem() {
        let (_dir, journal) = journal_with(&[]);
        for (date, to, says) in [
            (
                Some("2026-13-01"),
                None,
                "--date \"2026-13-01\" is not a date (the 'month' component",
            ),
            (
                Some("22/11/2026"),
                None,
                "--date \"22/11/2026\" is not a date",
            ),
            (
                Some("2026-11-22"),
                Some("2026-11-31"),
                "--to \"2026-11-31\" is not a date",
            ),
            (
                Some("2026-11-22"),
                Some("2026-11-21"),
                "--to 2026-11-21 is before --date 2026-11-22",
            ),
        ] {
            let err = run(&args(date, to, None), &journal, BEIJING).unwrap_err();
            assert_eq!(err.exit(), Exit::BadInput, "{err}");
            let message = err.to_string();
            assert!(message.contains(says), "{message}");
        }
        let err = run(&args(Some("2026-13-01"), None, None), &journal, BEIJING).unwrap_err();
        assert!(
            err.to_string().ends_with("use YYYY-MM-DD, e.g. 2026-11-22"),
            "{err}"
        );
        assert_eq!(
            export(args(Some("2026-13-01"), None, None), &journal, BEIJING),
            Exit::BadInput
        );
    }

    #[test]
    fn a_missing_journal_is_exit_3_and_nothing_is_created() {
        let dir = TempDir::new().unwrap();
        let journal = dir.path().join("data").join("journal.sqlite3");
        let output = dir.path().join("day.csv");
        let err = run(&args(None, None, Some(output.clone())), &journal, BEIJING).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "no journal at {}: nothing has been recorded on this till yet, or journal.path points elsewhere; point it at the till's journal with journal.path in the file given to --config (or SCANPAY_JOURNAL_PATH)",
                journal.display()
            )
        );
        assert_eq!(
            export(args(None, None, Some(output)), &journal, BEIJING),
            Exit::Config
        );
        assert_eq!(files_in(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn the_screen_without_a_journal_is_exit_3_and_creates_nothing() {
        let dir = TempDir::new().unwrap();
        let journal = dir.path().join("data").join("journal.sqlite3");
        let err = screen_day(None, &journal, BEIJING).unwrap_err();
        assert_eq!(err.exit(), Exit::Config);
        assert!(
            matches!(&err, ExportError::NoJournal(path) if *path == journal),
            "{err}"
        );
        assert_eq!(files_in(dir.path()), Vec::<String>::new());
        // A bad --date is still bad input, whatever the journal.
        let err = screen_day(Some("2026-13-01"), &journal, BEIJING).unwrap_err();
        assert_eq!(err.exit(), Exit::BadInput);
    }

    #[test]
    fn a_journal_that_cannot_be_opened_is_exit_3() {
        let dir = TempDir::new().unwrap();
        let not_a_journal = dir.path().join("notes.txt");
        fs::write(
            &not_a_journal,
            "a shopping list, not a database\n".repeat(50),
        )
        .unwrap();
        let err = run(&args(None, None, None), &not_a_journal, BEIJING).unwrap_err();
        assert_eq!(err.exit(), Exit::Config);
        assert!(
            err.to_string().contains("is not a scanpay journal"),
            "{err}"
        );
    }

    #[test]
    fn output_is_written_whole_and_renamed_into_place() {
        let (dir, journal) = journal_with(&[
            datetime!(2026-11-22 09:00 +8),
            datetime!(2026-11-22 23:59:59 +8),
            datetime!(2026-11-23 00:00 +8),
        ]);
        let output = dir.path().join("day.csv");
        fs::write(&output, "an older export\n").unwrap();
        let count = run(
            &args(Some("2026-11-22"), None, Some(output.clone())),
            &journal,
            BEIJING,
        );
        assert_eq!(count.unwrap(), 2);
        let exported = lines(&output);
        assert_eq!(exported.len(), 3, "{exported:?}");
        assert!(exported[2].contains("2026-11-22T23:59:59+08:00"));
        // No temporary file is left beside it.
        let mut expected = vec![
            "day.csv",
            "journal.sqlite3",
            "journal.sqlite3-shm",
            "journal.sqlite3-wal",
        ];
        expected.retain(|name| dir.path().join(name).exists());
        assert_eq!(files_in(dir.path()), expected);
    }

    #[test]
    fn a_failed_export_leaves_the_earlier_file_and_no_partial_one() {
        let dir = TempDir::new().unwrap();
        // Opens as a journal (scanpay's id, version 1) but has no orders table,
        // so reading fails after the temporary file was created.
        let journal = dir.path().join("journal.sqlite3");
        rusqlite::Connection::open(&journal)
            .unwrap()
            .execute_batch("PRAGMA application_id = 1396920409; PRAGMA user_version = 1;")
            .unwrap();
        let output = dir.path().join("day.csv");
        fs::write(&output, "an older export\n").unwrap();
        let err = run(
            &args(Some("2026-11-22"), None, Some(output.clone())),
            &journal,
            BEIJING,
        )
        .unwrap_err();
        assert_eq!(err.exit(), Exit::Internal, "{err}");
        assert_eq!(fs::read_to_string(&output).unwrap(), "an older export\n");
        assert_eq!(files_in(dir.path()), ["day.csv", "journal.sqlite3"]);
    }

    #[test]
    fn an_unwritable_output_is_exit_1() {
        let (dir, journal) = journal_with(&[]);
        let output = dir.path().join("no such folder").join("day.csv");
        let err = run(
            &args(Some("2026-11-22"), None, Some(output)),
            &journal,
            BEIJING,
        )
        .unwrap_err();
        assert_eq!(err.exit(), Exit::Internal);
        assert!(err.to_string().contains("no such folder"), "{err}");
        assert!(
            err.to_string().contains("check that the folder exists"),
            "{err}"
        );
    }

    #[test]
    fn a_range_includes_both_ends_and_nothing_else() {
        let (dir, journal) = journal_with(&[
            datetime!(2026-11-19 23:59:59 +8),
            datetime!(2026-11-20 00:00 +8),
            datetime!(2026-11-21 12:00 +8),
            datetime!(2026-11-22 23:59:59 +8),
            datetime!(2026-11-23 00:00 +8),
        ]);
        let output = dir.path().join("range.json");
        let mut range = args(Some("2026-11-20"), Some("2026-11-22"), Some(output.clone()));
        range.format = Format::Json;
        assert_eq!(run(&range, &journal, BEIJING).unwrap(), 3);
        let rows: Vec<serde_json::Value> =
            serde_json::from_slice(&fs::read(&output).unwrap()).unwrap();
        let created: Vec<_> = rows
            .iter()
            .map(|r| r["created_at"].as_str().unwrap())
            .collect();
        assert_eq!(
            created,
            [
                "2026-11-20T00:00:00+08:00",
                "2026-11-21T12:00:00+08:00",
                "2026-11-22T23:59:59+08:00"
            ]
        );
    }

    #[test]
    fn the_default_day_is_today_in_the_stores_time_zone() {
        let now = OffsetDateTime::now_utc();
        let (dir, journal) = journal_with(&[now - Duration::days(1), now]);
        let output = dir.path().join("today.csv");
        // Whatever the machine's own zone, "today" is the store's.
        for offset in [offset!(+14), offset!(-12)] {
            let today = now.to_offset(offset).date().to_string();
            assert_eq!(
                run(&args(None, None, Some(output.clone())), &journal, offset).unwrap(),
                1
            );
            let exported = lines(&output);
            assert!(exported[1].contains(&format!(",{today}T")), "{exported:?}");
        }
    }
}
