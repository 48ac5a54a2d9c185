//! Start-up to the first complete frame, and resident memory while idle:
//! the release binary in a real pseudo-terminal, on the built-in simulator
//! (which starts in-process), with a fresh journal each run.
//!
//! cargo bench --bench till_startup        (prints figures)

use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One start: (time to first frame, RSS after `idle` of idling).
fn start_once(idle: Duration) -> (Duration, u64) {
    let dir = tempfile::tempdir_in(".").unwrap();
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: 32,
            cols: 110,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_scanpay"));
    cmd.cwd(dir.path());
    cmd.env("TERM", "xterm-256color");
    cmd.env_remove("SCANPAY_CONFIG");
    let started = Instant::now();
    let mut child = pty.slave.spawn_command(cmd).unwrap();
    drop(pty.slave);
    let parser = Arc::new(Mutex::new(vt100::Parser::new(
        NonZeroU16::new(32).unwrap(),
        NonZeroU16::new(110).unwrap(),
        0,
    )));
    let feed = parser.clone();
    let mut output = pty.master.try_clone_reader().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = output.read(&mut buf) {
            if n == 0 {
                break;
            }
            feed.lock().unwrap().process(&buf[..n]);
        }
    });
    // The first frame is complete when the prompt (bottom half) is drawn.
    let first_frame = loop {
        if parser
            .lock()
            .unwrap()
            .screen()
            .contents()
            .contains("请输入金额")
        {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no first frame"
        );
        std::thread::sleep(Duration::from_micros(200));
    };
    std::thread::sleep(idle);
    let rss = rss_kib(child.process_id().unwrap());
    let mut keys = pty.master.take_writer().unwrap();
    keys.write_all(b"q").unwrap();
    keys.flush().unwrap();
    let _ = child.wait();
    (first_frame, rss)
}

fn main() {
    let runs = 15;
    let mut firsts: Vec<Duration> = Vec::new();
    let mut rss = Vec::new();
    for i in 0..runs {
        let idle = if i == 0 {
            Duration::from_secs(5)
        } else {
            Duration::from_millis(300)
        };
        let (first, kib) = start_once(idle);
        firsts.push(first);
        if i == 0 {
            rss.push(kib);
        }
    }
    firsts.sort();
    println!(
        "start-up to first frame ({runs} runs): p50 {:.1?}  min {:.1?}  max {:.1?}",
        firsts[runs / 2],
        firsts[0],
        firsts[runs - 1]
    );
    println!(
        "resident memory after 5 s idle on the till screen: {} KiB ({:.1} MiB)",
        rss[0],
        rss[0] as f64 / 1024.0
    );
}
