//! `scanpay scan-test`: what an installer runs at a new till. It lists the
//! devices, then echoes every read with its timing and the verdict, so
//! scanner settings can be tuned before the first customer.

use std::io::Write;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyCode, KeyModifiers};
use tokio::sync::mpsc;

use super::Exit;

use crate::scanner::wedge::{WedgeDecoder, WedgeOutput};
use crate::scanner::{Driver, DriverStatus, Pipeline, ScanEvent, ScannerSettings, hid, serial};

pub struct ScanTestArgs {
    pub driver: Option<Driver>,
    pub port: Option<String>,
    pub device: Option<String>,
    pub list: bool,
}

pub async fn run(args: ScanTestArgs, mut scanner: ScannerSettings) -> Exit {
    if args.list {
        list();
        return Exit::OK;
    }
    if let Some(port) = args.port {
        scanner.serial.port = port;
        scanner.driver = args.driver.unwrap_or(Driver::Serial);
    }
    if let Some(device) = args.device {
        scanner.hid.device = device;
        scanner.driver = args.driver.unwrap_or(Driver::Hid);
    }
    if let Some(driver) = args.driver {
        scanner.driver = driver;
    }
    if let Err(e) = scanner.validate() {
        eprintln!("scanpay scan-test: {e}");
        return Exit::Config;
    }
    let pipeline = Pipeline::new(scanner.driver, scanner.duplicate_window);
    match scanner.driver {
        Driver::Wedge => tokio::task::spawn_blocking(move || wedge(scanner, pipeline))
            .await
            .unwrap_or(Exit::Internal),
        Driver::Hid | Driver::Serial => device(scanner, pipeline).await,
    }
}

fn list() {
    println!("Serial ports (scanner.driver = \"serial\", serial.port = …):");
    let ports = serial::list_ports();
    if ports.is_empty() {
        println!("  none found");
    }
    for port in ports {
        println!("  {port}");
    }
    println!("\nHID devices (scanner.driver = \"hid\", hid.device = VID:PID or path):");
    match hid::list_devices() {
        Ok(devices) if devices.is_empty() => println!("  none found"),
        Ok(devices) => {
            for device in devices {
                println!("  {device}");
            }
        }
        Err(e) => println!("  cannot list: {e}"),
    }
    println!(
        "\nA keyboard-wedge scanner is a keyboard: test it with `scanpay scan-test --driver wedge`."
    );
}

/// One line for a read or a status change.
fn describe(event: &ScanEvent, previous: &mut Option<Instant>) -> String {
    let since = |at: Instant, previous: &mut Option<Instant>| {
        let text = previous.map_or(String::new(), |p| {
            format!(
                ", {:.1} s after the previous read",
                at.saturating_duration_since(p).as_secs_f64()
            )
        });
        *previous = Some(at);
        text
    };
    match event {
        ScanEvent::Scan {
            driver,
            code,
            timing,
        } => format!(
            "SCAN      {driver}: {code} in {:.1} ms{} — accepted, a WeChat payment code",
            timing.duration.as_secs_f64() * 1000.0,
            since(timing.completed, previous)
        ),
        ScanEvent::Rejected {
            driver,
            reason,
            shown,
            timing,
        } => format!(
            "REJECTED  {driver}: {shown} in {:.1} ms{} — {reason}",
            timing.duration.as_secs_f64() * 1000.0,
            since(timing.completed, previous)
        ),
        ScanEvent::Status { driver, status } => match status {
            DriverStatus::Connected(what) => format!("CONNECTED {driver}: {what}"),
            DriverStatus::Disconnected(why) => format!("LOST      {driver}: {why} (reopening)"),
            DriverStatus::Error(why) => format!("ERROR     {driver}: {why}"),
        },
    }
}

/// HID and serial: the driver's own thread reads; this prints until Ctrl-C.
/// A device that cannot be opened ends the test with its message.
async fn device(scanner: ScannerSettings, pipeline: Pipeline) -> Exit {
    let (events, mut received) = mpsc::unbounded_channel();
    let _reader = crate::scanner::start_reader(&scanner, pipeline, events);
    println!(
        "Reading the {} scanner; scan codes, Ctrl-C ends.",
        scanner.driver
    );
    let mut previous = None;
    loop {
        tokio::select! {
            event = received.recv() => match event {
                Some(event) => {
                    println!("{}", describe(&event, &mut previous));
                    if let ScanEvent::Status { status: DriverStatus::Error(_), .. } = event {
                        return Exit::Config;
                    }
                }
                None => return Exit::Internal,
            },
            _ = tokio::signal::ctrl_c() => return Exit::OK,
        }
    }
}

/// Puts the terminal in raw mode for as long as it lives, and back on drop
/// (also when unwinding from a panic).
pub(super) struct RawMode;

impl RawMode {
    pub(super) fn enable() -> std::io::Result<Self> {
        crossterm::terminal::enable_raw_mode()?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// The wedge: keys from this terminal, stamped on receipt.
fn wedge(scanner: ScannerSettings, mut pipeline: Pipeline) -> Exit {
    let _raw = match RawMode::enable() {
        Ok(raw) => raw,
        Err(e) => {
            eprintln!(
                "scanpay scan-test: the keyboard-wedge test reads keys from this terminal, which cannot be put in raw mode ({e}): run it in the till's terminal, not through a pipe"
            );
            return Exit::Config;
        }
    };
    // Raw mode: lines need their carriage return.
    let say = |line: String| {
        let mut out = std::io::stdout();
        let _ = write!(out, "{line}\r\n");
        let _ = out.flush();
    };
    say(
        "Scan codes into this terminal; what you type by hand shows as typed. Esc or Ctrl-C ends."
            .into(),
    );
    let mut decoder = WedgeDecoder::new(scanner.wedge.clone());
    let mut out = Vec::new();
    let mut previous = None;
    loop {
        let wait = decoder
            .next_deadline()
            .map_or(Duration::from_millis(250), |d| {
                d.saturating_duration_since(Instant::now())
            });
        match event::poll(wait) {
            Ok(true) => match event::read() {
                Ok(Event::Key(key)) => {
                    let quit = key.code == KeyCode::Esc
                        || (key.code == KeyCode::Char('c')
                            && key.modifiers.contains(KeyModifiers::CONTROL));
                    if quit && !decoder.is_holding() {
                        return Exit::OK;
                    }
                    decoder.feed(key, Instant::now(), &mut out);
                }
                Ok(_) => {}
                Err(e) => {
                    say(format!("cannot read the keyboard: {e}"));
                    return Exit::Internal;
                }
            },
            Ok(false) => {}
            Err(e) => {
                say(format!("cannot read the keyboard: {e}"));
                return Exit::Internal;
            }
        }
        decoder.poll(Instant::now(), &mut out);
        for output in out.drain(..) {
            match output {
                WedgeOutput::Key(key) => say(format!("typed     {}", key_name(&key))),
                WedgeOutput::Read { text, timing } => {
                    say(describe(&pipeline.read(&text, timing), &mut previous))
                }
            }
        }
    }
}

fn key_name(key: &crossterm::event::KeyEvent) -> String {
    match key.code {
        KeyCode::Char(c) if key.modifiers.contains(KeyModifiers::CONTROL) => format!("Ctrl+{c}"),
        KeyCode::Char(c) => format!("{c:?}"),
        other => format!("{other:?}"),
    }
}
