use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use scanpay::cli::{self, Exit, pay::PayArgs, scan_test::ScanTestArgs};
use scanpay::config::Settings;

/// A WeChat Pay payment-code till: scan, charge, journal, recover.
///
/// With no merchant configured, scanpay runs against its built-in simulator,
/// so everything works offline for training and testing.
#[derive(Parser)]
#[command(version, about, long_about, after_help = EXIT_CODES)]
struct Cli {
    /// Configuration file (defaults: config/default.toml, built in).
    #[arg(long, global = true, env = "SCANPAY_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Also log to stderr at this level (error, warn, info, debug, trace);
    /// the log file under log.dir always gets log.level. RUST_LOG overrides.
    #[arg(long, global = true, value_name = "LEVEL", default_value = "warn")]
    log_level: String,
    #[command(subcommand)]
    command: Option<Command>,
}

const EXIT_CODES: &str = "\
Exit codes of `scanpay pay`:
  0 paid · 1 internal error (journal) · 2 bad input, nothing sent · 3 configuration error, nothing sent
  4 failed, no money moved · 5 reversed or closed, any charge returned · 6 needs attention (unclear)
  8 the journal could not record the payment before anything was sent: nobody was charged";

#[derive(Subcommand)]
enum Command {
    /// The till: amount, scan, payment, result; F2 opens the journal (the default).
    Till,
    /// Take one payment without the till screen, printing each step.
    Pay {
        /// Amount in yuan, e.g. 12.34 (two decimals at most).
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        /// The customer's WeChat payment code: 18 digits starting 10-15.
        #[arg(
            long,
            allow_hyphen_values = true,
            required_unless_present = "scan",
            conflicts_with = "scan"
        )]
        auth_code: Option<String>,
        /// Read the payment code from the configured scanner instead.
        #[arg(long)]
        scan: bool,
        /// With --scan: how long to wait for a code, in seconds.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        scan_timeout: u64,
        /// Order description the customer sees (default: till.default_body).
        #[arg(long)]
        body: Option<String>,
        /// Print one JSON object with the outcome on stdout (steps go to stderr).
        #[arg(long)]
        json: bool,
    },
    /// Test a scanner at this till: list devices, then show every read and its verdict.
    ScanTest {
        /// wedge | hid | serial (default: scanner.driver).
        #[arg(long)]
        driver: Option<scanpay::scanner::Driver>,
        /// Serial port to read (implies --driver serial).
        #[arg(long)]
        port: Option<String>,
        /// HID device, VID:PID or path (implies --driver hid).
        #[arg(long)]
        device: Option<String>,
        /// List serial ports and HID devices, then exit.
        #[arg(long)]
        list: bool,
    },
    /// The manager's journal: the day's screen, or with --format/--output an export.
    ///
    /// Exports are also written whenever stdout is not a terminal, so
    /// `scanpay journal --date 2026-11-22 > day.csv` does what it says.
    Journal {
        /// The day, YYYY-MM-DD [default: today in till.time_zone].
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<String>,
        /// Export: the last day of a range, inclusive.
        #[arg(long, value_name = "YYYY-MM-DD")]
        to: Option<String>,
        /// Export in this format [default: csv].
        #[arg(long, value_enum)]
        format: Option<cli::journal::Format>,
        /// Export: write to FILE (complete or not at all) instead of stdout.
        /// An existing FILE must be a regular file; it is replaced.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Check the whole journal for damage (SQLite's integrity_check),
        /// read-only: prints ok or the problems; exit 0 sound, 1 damaged.
        #[arg(long, conflicts_with_all = ["date", "to", "format", "output"])]
        check: bool,
    },
    /// Resolve orders left open or unclear (outage, crash, reverse attempts
    /// run out): query each, reverse what is still unclear. Never charges.
    Replay {
        /// Only orders of this day, YYYY-MM-DD (default: all days).
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<String>,
        /// With --date: the last day of a range, inclusive.
        #[arg(long, value_name = "YYYY-MM-DD")]
        to: Option<String>,
        /// Only this order (out_trade_no).
        #[arg(long, value_name = "NO", conflicts_with_all = ["date", "to"])]
        order: Option<String>,
        /// Show what would be done, send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Orders resolved at the same time.
        #[arg(long, default_value_t = 4)]
        jobs: usize,
        /// Also reverse (refund) orders the gateway reports paid: a person's decision.
        #[arg(long)]
        reverse_paid: bool,
    },
    /// Serve the WeChat Pay simulator (micropay, orderquery, reverse) on loopback.
    Simulate {
        /// Address to listen on; port 0 picks a free one.
        #[arg(long, default_value = "127.0.0.1:8765")]
        listen: SocketAddr,
        /// How long the "timing out" scenarios take to answer, in ms.
        #[arg(long, default_value_t = 12_000)]
        slow_ms: u64,
        /// Start with a network fault on the WeChat endpoints: none, refuse, drop,
        /// delay, http500, garbage, badsign or flap:UP_MS/DOWN_MS.
        #[arg(long, value_name = "MODE", default_value = "none")]
        fault: scanpay::simulator::Fault,
    },
}

fn main() -> ExitCode {
    // Before anything is created: the journal, its -wal and -shm (SQLite gives
    // them the journal's mode), the owner locks and the logs hold openids,
    // transaction ids and amounts. Folders 0700, files 0600.
    // SAFETY: umask has no preconditions and cannot fail.
    unsafe { libc::umask(0o077) };
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("scanpay: cannot start the async runtime: {e}");
            return Exit::Internal.into();
        }
    };
    let command = cli.command.unwrap_or(Command::Till);
    let settings = match Settings::load(cli.config.as_deref(), std::env::vars()) {
        Ok(settings) => settings,
        Err(e) => {
            cli::err(format_args!("scanpay: configuration error: {e}"));
            return Exit::Config.into();
        }
    };
    let logging = match &command {
        // Viewing and exporting the journal create no file, not even a log:
        // an export logs to stderr, the screen (which owns the terminal) not at all.
        Command::Journal {
            to,
            format,
            output,
            check: false,
            ..
        } if !exports(to, format, output) => Ok(None),
        Command::Journal { .. } => scanpay::logging::init_stderr(&cli.log_level).map(|()| None),
        // The terminal belongs to the till's screen: its logs go to the file only.
        command => scanpay::logging::init(
            &settings.log_dir,
            &settings.log_level,
            (!matches!(command, Command::Till)).then_some(cli.log_level.as_str()),
        )
        .map(Some),
    };
    let _log = match logging {
        Ok(guard) => guard,
        Err(e) => {
            cli::err(format_args!("scanpay: {e}"));
            return Exit::Config.into();
        }
    };
    let exit = runtime.block_on(async {
        match command {
            Command::Pay {
                amount,
                auth_code,
                scan: _,
                scan_timeout,
                body,
                json,
            } => {
                let scan_timeout = Duration::from_secs(scan_timeout);
                cli::pay::run(
                    PayArgs {
                        amount,
                        auth_code,
                        scan_timeout,
                        body,
                        json,
                    },
                    settings,
                )
                .await
            }
            Command::ScanTest {
                driver,
                port,
                device,
                list,
            } => {
                cli::scan_test::run(
                    ScanTestArgs {
                        driver,
                        port,
                        device,
                        list,
                    },
                    settings.scanner,
                )
                .await
            }
            Command::Till => till(settings).await,
            Command::Replay {
                date,
                to,
                order,
                dry_run,
                jobs,
                reverse_paid,
            } => {
                let args = cli::replay::ReplayArgs {
                    date,
                    to,
                    order,
                    dry_run,
                    jobs,
                    reverse_paid,
                };
                match scanpay::app::start(settings).await {
                    Ok(running) => cli::replay::run(args, running).await,
                    Err(e) => {
                        cli::err(format_args!("scanpay replay: {e}"));
                        e.exit()
                    }
                }
            }
            Command::Journal { check: true, .. } => cli::journal::check(&settings.journal_path),
            Command::Journal {
                date,
                to,
                format,
                output,
                check: false,
            } => {
                if exports(&to, &format, &output) {
                    let format = format.unwrap_or(cli::journal::Format::Csv);
                    let args = cli::journal::ExportArgs {
                        date,
                        to,
                        format,
                        output,
                    };
                    cli::journal::export(args, &settings.journal_path, settings.store_offset)
                } else {
                    // The journal screen alone: no engine, gateway or
                    // recovery, only reads.
                    match cli::journal::screen_day(
                        date.as_deref(),
                        &settings.journal_path,
                        settings.store_offset,
                    ) {
                        Ok(day) => screen_exit(scanpay::tui::run_journal(&settings, day).await),
                        Err(e) => {
                            cli::err(format_args!("scanpay journal: {e}"));
                            e.exit()
                        }
                    }
                }
            }
            Command::Simulate {
                listen,
                slow_ms,
                fault,
            } => cli::simulate::run(listen, Duration::from_millis(slow_ms), fault).await,
        }
    });
    exit.into()
}

/// Whether `scanpay journal` exports rather than opening the screen.
fn exports(
    to: &Option<String>,
    format: &Option<cli::journal::Format>,
    output: &Option<PathBuf>,
) -> bool {
    use std::io::IsTerminal;
    format.is_some() || output.is_some() || to.is_some() || !std::io::stdout().is_terminal()
}

/// The till screen.
async fn till(settings: Settings) -> Exit {
    match scanpay::app::start(settings).await {
        Ok(running) => screen_exit(scanpay::tui::run(running).await),
        Err(e) => {
            cli::err(format_args!("scanpay: {e}"));
            e.exit()
        }
    }
}

/// The screens' result as an exit code.
fn screen_exit(ended: Result<(), scanpay::tui::TuiError>) -> Exit {
    match ended {
        Ok(()) => Exit::OK,
        Err(e) => {
            cli::err(format_args!("scanpay: {e}"));
            Exit::Internal
        }
    }
}
