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
    /// Configuration file, over the built-in defaults (`scanpay config --defaults`).
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
Examples:
  scanpay                              the till (the built-in simulator until a merchant is set)
  scanpay pay --amount 12.34 --auth-code 134539517967686076
  scanpay config                       the settings in effect; `scanpay config --defaults` all of them
  scanpay check                        prove the merchant's key, ids and certificate, moving no money
  scanpay reconcile --date 2026-11-22  the day's books against WeChat's daily bill (exit 7: discrepancies)

Exit codes of `scanpay pay`:
  0 paid · 1 internal error (journal) · 2 bad input, nothing sent · 3 configuration error, nothing sent
  4 failed, no money moved · 5 reversed or closed, any charge returned · 6 needs attention (unclear)
  8 the journal could not record the payment before anything was sent: nobody was charged";

const TILL_HELP: &str = "\
Examples:
  scanpay till
  scanpay --config /etc/scanpay/till.toml till
  SCANPAY_TILL_LANGUAGE=en scanpay till        the cashier's messages in English";

const PAY_HELP: &str = "\
Examples:
  scanpay pay --amount 12.34 --auth-code 134539517967686076
  scanpay pay --amount 12.34 --auth-code \"1345 3951 7967 6860 76\"   (typed as the phone shows it)
  scanpay pay --amount 12.34 --scan --json --body \"两杯咖啡\"

Exit codes:
  0  paid
  1  internal error: the journal could not be written (unfinished orders stay in it)
  2  bad input (amount, payment code, arguments): nothing was sent
  3  configuration error: nothing was sent
  4  failed: a definite refusal, no money moved (NOTENOUGH, AUTHCODEEXPIRE, …)
  5  reversed or closed: any charge was returned to the customer
  6  needs attention: still unclear; take no other payment for this sale, `scanpay replay` settles it
  8  the journal could not record the payment before anything was sent: nobody was charged

With --json, stdout is one JSON object whatever happens (bad input and configuration
errors too): exit, message, out_trade_no, state, amount, transaction_id, err_code
(null when not known).";

const SCAN_TEST_HELP: &str = "\
Examples:
  scanpay scan-test --list                     the serial ports and HID devices found
  scanpay scan-test                            the configured scanner (scanner.driver)
  scanpay scan-test --port /dev/ttyACM0        a serial scanner
  scanpay scan-test --device 0c2e:0b61         a HID scanner, VID:PID";

const JOURNAL_HELP: &str = "\
Examples:
  scanpay journal                              today's orders on screen
  scanpay journal --date 2026-11-22 > day.csv
  scanpay journal --date 2026-11-01 --to 2026-11-30 --format json -o november.json
  scanpay journal --excel -o today.csv         for a double-click in Excel (BOM, ids as text)
  scanpay journal --check";

const REPLAY_HELP: &str = "\
Examples:
  scanpay replay --dry-run                     what would be done, nothing sent
  scanpay replay                               every unfinished or unclear order
  scanpay replay --date 2026-11-22
  scanpay replay --order T01261122140307K3F9XQ000042";

const REFUND_HELP: &str = "\
Examples:
  scanpay refund --order T01261122140307K3F9XQ000042                 all that remains
  scanpay refund --order T01261122140307K3F9XQ000042 --amount 5.00 --reason 退货
  scanpay refund --order T01261122140307K3F9XQ000042 --json

Exit codes: 0 refunded (confirmed by refundquery) · 2 bad input, nothing sent (unknown or
unpaid order, over a year old, more than remains, the 51st refund) · 3 configuration ·
4 refused by WeChat (the message says what to do, e.g. top up the merchant balance) ·
6 still processing or unclear: journaled, `scanpay replay` follows it up · 8 the journal
could not record it, nothing sent · 1 internal";

const RECONCILE_HELP: &str = "\
Examples:
  scanpay reconcile --date 2026-11-22                  download the day's bill and match it
  scanpay reconcile --date 2026-11-22 --json -o 2026-11-22.json
  scanpay reconcile --date 2026-11-22 --bill 账单.csv   a bill saved from the merchant platform
  scanpay reconcile --store --date 2026-11-22          every till of the store at once

The bill is the day in Beijing time (UTC+8). Its rows whose 设备号 is this till's id are
matched against this till's journal; other tills' rows are totalled apart. WeChat builds a
day's bill from 09:00 the next day: an earlier try answers exit 4, try again later.

--store matches the merchant's bill against every till of the store at once, each till's
side read from the store database ([store] database_url), as far as the till has shipped:
a section per till, then the rows whose 设备号 is no till of the store. Those charges and
refunds are discrepancies too (a till that has not shipped: run `scanpay sync` on it; or a
device outside scanpay). It needs no till journal and records nothing: `scanpay reconcile`
on each till records its reconciliation, and \"reversed after payment\" on its orders, in
its journal; the store report only lists them.

Exit codes: 0 the books agree · 7 discrepancies (each with what to do) · 4 WeChat has no
bill yet (Bill Creating) or refused the request · 2 bad input (the date, --bill, --output) ·
3 configuration ([store] not set for --store) · 1 internal (the journal, the store
database, the network)";

const SIMULATE_HELP: &str = "\
Examples:
  scanpay simulate
  scanpay simulate --listen 127.0.0.1:0 --fault flap:2000/1000

Point a till at it, from another terminal, with these variables:
  SCANPAY_GATEWAY_MODE=wechat
  SCANPAY_GATEWAY_BASE_URL=http://127.0.0.1:8765
  SCANPAY_MERCHANT_APPID=wxd930ea5d5a258f4f
  SCANPAY_MERCHANT_MCH_ID=10000100
  SCANPAY_API_KEY=192006250b4c09247ec02edce69f6a2d
then run `scanpay`, `scanpay pay …` or `scanpay check`. In a --config file the same are
gateway.mode, gateway.base_url, merchant.appid and merchant.mch_id (the key stays in
SCANPAY_API_KEY or merchant.api_key_file). A gateway on loopback needs no client
certificate and may use shortened payment.* timings.";

const CONFIG_HELP: &str = "\
Examples:
  scanpay config                               the settings in effect, secrets masked
  scanpay --config till.toml config            what till.toml changes
  scanpay config --defaults > till.toml        every setting with its comment, to edit

The effective configuration is the built-in defaults, then the --config file, then the
SCANPAY_<SECTION>_<KEY> variables (SCANPAY_PAYMENT_DEADLINE_MS=30000 sets
payment.deadline_ms). Exit 0 valid, 3 a setting is wrong (the message names it).";

const CHECK_HELP: &str = "\
Examples:
  scanpay --config till.toml check

Moves no money and records nothing: it asks WeChat Pay about an order number that cannot
exist (signed as a payment would be) and knocks at /secapi/ with the client certificate.
One line per finding: ok, FAIL (with what to do) or skip.
Exit codes: 0 every finding ok · 1 WeChat Pay could not be reached or gave no verdict ·
3 a setting is wrong (the key, merchant.appid, merchant.mch_id, the client certificate).";

const SYNC_HELP: &str = "\
Sends every event of this till's journal that the store database ([store] database_url)
does not have yet, in batches of store.batch_events, each in one transaction; safe to run
at any time, from cron too, beside a running till. Prints
`shipped N events, store is at event M for till T`.
Exit codes: 0 the store has every event · 1 the store database is unreachable or refused
a batch (the message says why) · 3 [store] is not set or is wrong.";

const STORE_HELP: &str = "\
Reads the store database ([store] database_url) that every till ships to, read-only: never
writes, never migrates, never talks to WeChat.
  scanpay store                          the store screen: the journal screen over every till,
                                         with a line per till (←→ day, Enter an order's timeline)
  scanpay store --date 2026-11-22 --format csv --output day.csv
                                         every till's orders, the columns of scanpay journal
  scanpay store --date 2026-11-01 --to 2026-11-30 --excel --output november.csv
  scanpay store --tills --date 2026-11-22
                                         one line per till (orders, paid, takings, refunds,
                                         net, unsettled, the store's event mark) and a total
Exit codes: 0 shown or written · 1 the store database is unreachable, not set up yet (run
scanpay sync on a till first) or the output could not be written · 2 a bad date or --output
· 3 [store] is not set.";

#[derive(Subcommand)]
enum Command {
    /// The till: amount, scan, payment, result; F2 opens the journal (the default).
    #[command(after_help = TILL_HELP)]
    Till,
    /// Take one payment without the till screen, printing each step.
    #[command(after_help = PAY_HELP)]
    Pay {
        /// Amount in yuan, e.g. 12.34 (two decimals at most).
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        /// The customer's WeChat payment code: 18 digits starting 10-15 (spaces are ignored).
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
    #[command(after_help = SCAN_TEST_HELP)]
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
    #[command(after_help = JOURNAL_HELP)]
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
        /// Export CSV for a double-click in Excel (a Chinese Windows too): UTF-8
        /// with a BOM, order and transaction ids kept as text. CSV only.
        #[arg(long)]
        excel: bool,
        /// Export: write to FILE (complete or not at all) instead of stdout.
        /// An existing FILE must be a regular file; it is replaced.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Check the whole journal for damage (SQLite's integrity_check),
        /// read-only: prints ok or the problems; exit 0 sound, 1 damaged.
        #[arg(long, conflicts_with_all = ["date", "to", "format", "output", "excel"])]
        check: bool,
    },
    /// Resolve orders left open or unclear (outage, crash, reverse attempts
    /// run out): query each, reverse what is still unclear. Never charges.
    #[command(after_help = REPLAY_HELP)]
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
    /// Refund a paid order, whole or in part (申请退款). The refund number is
    /// journaled before the request leaves and reused on every retry.
    #[command(after_help = REFUND_HELP)]
    Refund {
        /// The paid order (out_trade_no).
        #[arg(long, value_name = "NO")]
        order: String,
        /// Yuan to refund; default: all that remains refundable.
        #[arg(long, allow_hyphen_values = true)]
        amount: Option<String>,
        /// Why, as the customer's statement shows it (refund_desc).
        #[arg(long)]
        reason: Option<String>,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Match the day's books against WeChat's daily bill (下载交易账单): charges
    /// the till gave up on, paid orders WeChat lacks, amounts and refunds.
    #[command(after_help = RECONCILE_HELP)]
    Reconcile {
        /// The bill's day, YYYY-MM-DD (Beijing time).
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: String,
        /// A bill saved from the merchant platform (CSV, or gzip) instead of downloading it.
        #[arg(long, value_name = "FILE")]
        bill: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Write the report (JSON with --json) to FILE, complete or not at all.
        /// An existing FILE must be a regular file; it is replaced.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Every till of the store at once, from the store database ([store]
        /// database_url), instead of this till's journal. Records nothing.
        #[arg(long)]
        store: bool,
    },
    /// Ship the journal to the store database once ([store] database_url) and report.
    #[command(after_help = SYNC_HELP)]
    Sync,
    /// Every till's orders from the store database ([store] database_url):
    /// the store screen, an export, or a line per till. Read-only.
    #[command(after_help = STORE_HELP)]
    Store {
        /// The (first) day, YYYY-MM-DD (in till.time_zone) [default: today].
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<String>,
        /// Export every day from --date to this one, inclusive.
        #[arg(long, value_name = "YYYY-MM-DD", conflicts_with = "tills")]
        to: Option<String>,
        /// csv or json: export the orders (with --tills: the lines per till,
        /// json in fen) instead of opening the screen [default: csv].
        #[arg(long, value_enum)]
        format: Option<cli::journal::Format>,
        /// CSV for Excel (a BOM, ids kept as text).
        #[arg(long, conflicts_with = "tills")]
        excel: bool,
        /// Write to FILE (complete or not at all) instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// One line per till of --date, and the total, instead of the orders.
        #[arg(long)]
        tills: bool,
    },
    /// Serve the WeChat Pay simulator (micropay, orderquery, reverse) on loopback.
    #[command(after_help = SIMULATE_HELP)]
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
    /// Print the effective configuration as TOML, secrets masked.
    #[command(after_help = CONFIG_HELP)]
    Config {
        /// Print the built-in defaults instead: every setting, with its comment.
        #[arg(long)]
        defaults: bool,
    },
    /// Prove the merchant setup (API key, appid, mch_id, client certificate)
    /// against WeChat Pay without moving money.
    #[command(after_help = CHECK_HELP)]
    Check,
}

fn main() -> ExitCode {
    // Before anything is created: the journal, its -wal and -shm (SQLite gives
    // them the journal's mode), the owner locks and the logs hold openids,
    // transaction ids and amounts. Folders 0700, files 0600.
    // SAFETY: umask has no preconditions and cannot fail.
    unsafe { libc::umask(0o077) };
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return arguments_refused(e),
    };
    let command = cli.command.unwrap_or(Command::Till);
    // Read-only and needing nothing but the settings: no runtime, no log.
    if let Command::Config { defaults } = command {
        return cli::config::run(defaults, cli.config.as_deref()).into();
    }
    // With `pay --json` every ending, this one too, is a JSON object on stdout.
    let pay_json = matches!(command, Command::Pay { json: true, .. });
    let fail = |exit: Exit, message: String| -> ExitCode {
        if pay_json {
            cli::pay::fail(true, exit, &cli::pay::Report::default(), &message).into()
        } else {
            cli::err(format_args!("scanpay: {message}"));
            exit.into()
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            return fail(
                Exit::Internal,
                format!("cannot start the async runtime: {e}"),
            );
        }
    };
    let settings = match Settings::load(cli.config.as_deref(), std::env::vars()) {
        Ok(settings) => settings,
        Err(e) => return fail(Exit::Config, format!("configuration error: {e}")),
    };
    let logging = match &command {
        // Viewing and exporting the journal create no file, not even a log:
        // an export logs to stderr, the screen (which owns the terminal) not at all.
        Command::Journal {
            to,
            format,
            output,
            excel,
            check: false,
            ..
        } if !exports(to, format, output, *excel) => Ok(None),
        // Read-only commands create no folder and no file: stderr only.
        Command::Journal { .. } | Command::Check | Command::ScanTest { list: true, .. } => {
            scanpay::logging::init_stderr(&cli.log_level).map(|()| None)
        }
        // scan-test prints every problem itself: its log goes to the file
        // alone, or each would show twice.
        Command::ScanTest { .. } => scanpay::logging::init(
            &settings.log_dir,
            &settings.log_level,
            None,
            settings.store_offset,
        )
        .map(Some),
        // The terminal belongs to the till's screen: its logs go to the file only.
        command => scanpay::logging::init(
            &settings.log_dir,
            &settings.log_level,
            (!matches!(command, Command::Till)).then_some(cli.log_level.as_str()),
            settings.store_offset,
        )
        .map(Some),
    };
    let _log = match logging {
        Ok(guard) => guard,
        Err(e) => return fail(Exit::Config, e),
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
                match scanpay::startup::start(settings).await {
                    Ok(running) => cli::replay::run(args, running).await,
                    Err(e) => {
                        cli::err(format_args!("scanpay replay: {e}"));
                        e.exit()
                    }
                }
            }
            Command::Refund {
                order,
                amount,
                reason,
                json,
            } => {
                let args = cli::refund::RefundArgs {
                    order,
                    amount,
                    reason,
                    json,
                };
                match scanpay::startup::start(settings).await {
                    Ok(running) => cli::refund::run(args, running).await,
                    Err(e) => {
                        cli::err(format_args!("scanpay refund: {e}"));
                        e.exit()
                    }
                }
            }
            Command::Reconcile {
                date,
                bill,
                json,
                output,
                store,
            } => {
                let args = cli::reconcile::ReconcileArgs {
                    date,
                    bill,
                    json,
                    output,
                    store,
                };
                cli::reconcile::run(args, settings).await
            }
            Command::Journal { check: true, .. } => cli::journal::check(&settings.journal_path),
            Command::Journal {
                date,
                to,
                format,
                output,
                excel,
                check: false,
            } => {
                if exports(&to, &format, &output, excel) {
                    if excel && format == Some(cli::journal::Format::Json) {
                        cli::err("scanpay journal: --excel writes CSV for Excel; leave out --format json, or --excel");
                        return Exit::BadInput;
                    }
                    let format = format.unwrap_or(cli::journal::Format::Csv);
                    let args = cli::journal::ExportArgs {
                        date,
                        to,
                        format,
                        excel,
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
            Command::Check => cli::check::run(settings).await,
            Command::Sync => cli::sync::run(&settings).await,
            Command::Store {
                date,
                to,
                format,
                excel,
                output,
                tills,
            } => {
                if excel && format == Some(cli::journal::Format::Json) {
                    cli::err("scanpay store: --excel writes CSV for Excel; leave out --format json, or --excel");
                    return Exit::BadInput;
                }
                let screen = !tills && !exports(&to, &format, &output, excel);
                let args = cli::store::StoreArgs {
                    date,
                    to,
                    format: format.unwrap_or(cli::journal::Format::Csv),
                    excel,
                    output,
                };
                if tills {
                    cli::store::tills(&settings, args).await
                } else if screen {
                    match cli::store::screen_day(&settings, args.date.as_deref()).await {
                        Ok(day) => {
                            let store = settings.store.clone().expect("screen_day checked [store]");
                            screen_exit(scanpay::tui::run_store(&settings, store, day).await)
                        }
                        Err(exit) => exit,
                    }
                } else {
                    cli::store::export(&settings, args).await
                }
            }
            Command::Config { .. } => unreachable!("handled before the settings are loaded"),
        }
    });
    exit.into()
}

/// Arguments clap refuses (a missing --amount, an unknown flag), and --help
/// or --version. For `pay --json` a refusal too is one JSON object on stdout,
/// exit 2; everything else is clap's own output and exit code.
fn arguments_refused(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pay_json = args.iter().any(|a| a == "pay") && args.iter().any(|a| a == "--json");
    if pay_json && !matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let rendered = e.render().to_string();
        // clap's message without its "error: " prefix and usage lines, on one line.
        let message: Vec<&str> = rendered
            .lines()
            .map(str::trim)
            .take_while(|line| !line.starts_with("Usage:"))
            .filter(|line| !line.is_empty())
            .collect();
        let message = message.join(" ");
        let message = message.strip_prefix("error: ").unwrap_or(&message);
        return cli::pay::fail(true, Exit::BadInput, &cli::pay::Report::default(), message).into();
    }
    e.exit()
}

/// Whether `scanpay journal` exports rather than opening the screen.
fn exports(
    to: &Option<String>,
    format: &Option<cli::journal::Format>,
    output: &Option<PathBuf>,
    excel: bool,
) -> bool {
    use std::io::IsTerminal;
    format.is_some()
        || output.is_some()
        || to.is_some()
        || excel
        || !std::io::stdout().is_terminal()
}

/// The till screen.
async fn till(settings: Settings) -> Exit {
    match scanpay::startup::start(settings).await {
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
