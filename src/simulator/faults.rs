//! Network faults: switches that make the WeChat endpoints fail the way
//! networks, proxies and overloaded gateways do, whatever the scenario, so
//! tests can prove the till never loses an order and never charges twice.
//!
//! Faults spare `/_simulator/*`. `refuse` closes the gateway's port, so those
//! paths are also served on a control port of their own that no fault touches.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::extract::connect_info::Connected;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{info, warn};

/// A network fault of the simulated gateway, set with
/// [`Simulator::set_fault`](super::Simulator::set_fault) or by posting it as
/// JSON to `/_simulator/fault`: `{"mode": "drop"}`,
/// `{"mode": "flap", "up_ms": 500, "down_ms": 1500}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Fault {
    /// Normal service.
    #[default]
    None,
    /// Connections are refused: the port is closed, and bound again (the same
    /// port) when the fault ends. A kept-alive connection is cut when its
    /// next request arrives. Nothing is processed.
    Refuse,
    /// Processed, then the connection is cut half way through the answer:
    /// Content-Length announces the whole body, half of it is sent.
    Drop,
    /// Processed; answered after `slow_answer`, past the till's read timeout.
    Delay,
    /// Not processed: HTTP 500 with a short HTML page.
    Http500,
    /// Processed; HTTP 200 with a body that is not XML.
    Garbage,
    /// Processed; the answer with one hex digit of its `sign` flipped.
    BadSign,
    /// Normal for `up_ms`, then `refuse` for `down_ms`, over and over from
    /// when it was set.
    Flap { up_ms: u64, down_ms: u64 },
}

impl Fault {
    /// The modes that take no parameters, for parsing.
    const PLAIN: [Fault; 7] = [
        Fault::None,
        Fault::Refuse,
        Fault::Drop,
        Fault::Delay,
        Fault::Http500,
        Fault::Garbage,
        Fault::BadSign,
    ];

    /// The call is processed (the ledger moves), but the till does not get
    /// its answer intact.
    pub(super) fn spoils_answer(self) -> bool {
        matches!(
            self,
            Fault::Drop | Fault::Delay | Fault::Garbage | Fault::BadSign
        )
    }

    /// The mode as written in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Refuse => "refuse",
            Fault::Drop => "drop",
            Fault::Delay => "delay",
            Fault::Http500 => "http500",
            Fault::Garbage => "garbage",
            Fault::BadSign => "badsign",
            Fault::Flap { .. } => "flap",
        }
    }
}

/// The command-line form: a mode's name, or `flap:UP_MS/DOWN_MS`.
impl FromStr for Fault {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(schedule) = text.strip_prefix("flap:") {
            let flap = schedule.split_once('/').and_then(|(up, down)| {
                Some(Fault::Flap {
                    up_ms: up.parse().ok()?,
                    down_ms: down.parse().ok()?,
                })
            });
            return flap
                .ok_or_else(|| format!("{text:?}: write flap:UP_MS/DOWN_MS, e.g. flap:2000/5000"));
        }
        Fault::PLAIN
            .into_iter()
            .find(|fault| fault.name() == text)
            .ok_or_else(|| {
                format!(
                    "unknown fault {text:?}: none, refuse, drop, delay, http500, garbage, badsign or flap:UP_MS/DOWN_MS"
                )
            })
    }
}

/// The fault in force, when it was set (a flap's phases count from then),
/// and a count of the switches.
#[derive(Clone, Copy)]
struct Setting {
    fault: Fault,
    since: Instant,
    generation: u64,
}

/// The fault switch, shared by the handlers and the gateway's port.
pub(super) struct Switch {
    setting: watch::Sender<Setting>,
    /// The last generation the port was opened or closed for.
    applied: watch::Sender<u64>,
}

impl Switch {
    pub fn new() -> Self {
        Self {
            setting: watch::Sender::new(Setting {
                fault: Fault::None,
                since: Instant::now(),
                generation: 0,
            }),
            applied: watch::Sender::new(0),
        }
    }

    /// Switches the fault, and returns once the gateway's port is open or
    /// closed to match, so the very next connection meets the new fault.
    /// Waits forever if the port is no longer served: race it with shutdown.
    pub async fn set(&self, fault: Fault) {
        let mut generation = 0;
        self.setting.send_modify(|setting| {
            generation = setting.generation + 1;
            *setting = Setting {
                fault,
                since: Instant::now(),
                generation,
            };
        });
        info!(fault = fault.name(), "network fault set");
        let _ = self
            .applied
            .subscribe()
            .wait_for(|applied| *applied >= generation)
            .await;
    }

    /// The fault as set.
    pub fn get(&self) -> Fault {
        self.setting.borrow().fault
    }

    /// What a call meets now: the fault, with a flap resolved to its phase.
    pub fn now(&self) -> Fault {
        phase(*self.setting.borrow(), Instant::now()).0
    }
}

/// The fault in force at `now`, a flap resolved to `None` or `Refuse`, and
/// when that changes by itself (only a flap's does).
fn phase(setting: Setting, now: Instant) -> (Fault, Option<Instant>) {
    let Fault::Flap { up_ms, down_ms } = setting.fault else {
        return (setting.fault, None);
    };
    let period = up_ms.saturating_add(down_ms);
    if period == 0 {
        return (Fault::None, None);
    }
    let elapsed = now.saturating_duration_since(setting.since).as_millis();
    let into = u64::try_from(elapsed % u128::from(period)).unwrap_or(0);
    let (state, left) = if into < up_ms {
        (Fault::None, up_ms - into)
    } else {
        (Fault::Refuse, period - into)
    };
    (state, now.checked_add(Duration::from_millis(left)))
}

/// The gateway's listening socket: closed while connections are refused, so
/// a client's connect fails as against a host whose service is down, and
/// bound again to the same address when they are not.
pub(super) struct Door {
    addr: SocketAddr,
    socket: Option<TcpListener>,
    switch: Arc<Switch>,
    changes: watch::Receiver<Setting>,
}

impl Door {
    pub fn new(socket: TcpListener, switch: Arc<Switch>) -> io::Result<Self> {
        Ok(Self {
            addr: socket.local_addr()?,
            socket: Some(socket),
            changes: switch.setting.subscribe(),
            switch,
        })
    }
}

/// Waits for the fault to be switched, or for a flap's next phase.
async fn next_change(changes: &mut watch::Receiver<Setting>, phase_ends: Option<Instant>) {
    let phase_ends = async {
        match phase_ends {
            Some(at) => tokio::time::sleep_until(at.into()).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        // The Door holds the switch, so the sender outlives this receiver.
        _ = changes.changed() => {}
        () = phase_ends => {}
    }
}

impl Listener for Door {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        loop {
            let setting = *self.changes.borrow_and_update();
            let (fault, phase_ends) = phase(setting, Instant::now());
            if fault == Fault::Refuse {
                if self.socket.take().is_some() {
                    info!(addr = %self.addr, "refusing connections: port closed");
                }
                self.switch.applied.send_replace(setting.generation);
                next_change(&mut self.changes, phase_ends).await;
                continue;
            }
            let socket = match self.socket.take() {
                Some(socket) => socket,
                None => match TcpListener::bind(self.addr).await {
                    Ok(socket) => {
                        info!(addr = %self.addr, "port open again");
                        socket
                    }
                    Err(error) => {
                        // Someone took the port meanwhile; keep trying.
                        warn!(addr = %self.addr, %error, "cannot bind the gateway's port again");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let socket = self.socket.insert(socket);
            self.switch.applied.send_replace(setting.generation);
            tokio::select! {
                // axum's accept, which retries (and paces) failed accepts.
                (stream, peer) = Listener::accept(socket) => {
                    let connection = Connection {
                        stream,
                        switch: self.switch.clone(),
                        cut: Cut::default(),
                        held: Vec::new(),
                        sent: 0,
                    };
                    return (connection, peer);
                }
                () = next_change(&mut self.changes, phase_ends) => {}
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// A connection to the gateway's port. It can outlive the listening socket
/// (HTTP keep-alive), so while connections are refused it fails as the next
/// request arrives, before hyper sees a byte of it.
///
/// It also cuts an answer short for `drop`. hyper cannot: a body that ends
/// early makes it close the connection with the headers still in its buffer,
/// so the client would see no answer at all rather than a truncated one.
pub(super) struct Connection {
    stream: TcpStream,
    switch: Arc<Switch>,
    cut: Cut,
    /// The answer being cut short, held until hyper flushes it whole.
    held: Vec<u8>,
    /// How much of `held` is on the wire.
    sent: usize,
}

/// A handler's hold on its connection (through axum's `ConnectInfo`): the
/// number of bytes to withhold from the end of its answer, 0 for none.
#[derive(Clone, Default)]
pub(super) struct Cut(Arc<AtomicUsize>);

impl Cut {
    pub fn withhold(&self, bytes: usize) {
        self.0.store(bytes, Ordering::Relaxed);
    }

    fn withheld(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl Connected<IncomingStream<'_, Door>> for Cut {
    fn connect_info(stream: IncomingStream<'_, Door>) -> Self {
        stream.io().cut.clone()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // Only data counts: hyper also reads while a call is in flight, to
        // see the client leave, and that call's answer must still go out.
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.stream).poll_read(cx, buf))?;
        if buf.filled().len() > before && self.switch.now() == Fault::Refuse {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        Poll::Ready(Ok(()))
    }
}

// Not vectored, so hyper hands over each answer as one plain write.
impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.cut.withheld() > 0 {
            self.held.extend_from_slice(buf);
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    /// hyper flushes once an answer is written whole: a held answer then goes
    /// out without its last bytes, and the connection fails.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let withheld = this.cut.withheld();
        if withheld == 0 {
            return Pin::new(&mut this.stream).poll_flush(cx);
        }
        let keep = this.held.len().saturating_sub(withheld);
        while this.sent < keep {
            let part = &this.held[this.sent..keep];
            match ready!(Pin::new(&mut this.stream).poll_write(cx, part))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                n => this.sent += n,
            }
        }
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "network fault: answer cut short",
        )))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// What a load balancer answers when the gateway behind it fails.
pub(super) fn server_error() -> Response {
    const PAGE: &str = "<html><head><title>500 Internal Server Error</title></head>\
        <body><h1>500 Internal Server Error</h1></body></html>\r\n";
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(CONTENT_TYPE, "text/html")],
        PAGE,
    )
        .into_response()
}

/// A 200 whose body is not XML, not even UTF-8: what a proxy that mangles
/// the stream (or compresses it without saying so) delivers.
pub(super) fn garbage() -> Response {
    const BYTES: &[u8] = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xab\xd6\xff\xfe garbled";
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "text/xml; charset=utf-8")],
        BYTES,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flap_alternates_from_when_it_was_set() {
        let since = Instant::now();
        let set = |fault| Setting {
            fault,
            since,
            generation: 1,
        };
        let flap = set(Fault::Flap {
            up_ms: 100,
            down_ms: 50,
        });
        let at = |ms| since + Duration::from_millis(ms);
        assert_eq!(phase(flap, at(0)), (Fault::None, Some(at(100))));
        assert_eq!(phase(flap, at(99)), (Fault::None, Some(at(100))));
        assert_eq!(phase(flap, at(100)), (Fault::Refuse, Some(at(150))));
        assert_eq!(phase(flap, at(170)), (Fault::None, Some(at(250))));
        assert_eq!(phase(set(Fault::Drop), at(170)), (Fault::Drop, None));
    }

    #[test]
    fn the_command_line_names_every_mode() {
        for fault in Fault::PLAIN {
            assert_eq!(fault.name().parse(), Ok(fault));
        }
        assert_eq!(
            "flap:2000/5000".parse(),
            Ok(Fault::Flap {
                up_ms: 2000,
                down_ms: 5000
            })
        );
        assert!("flap".parse::<Fault>().is_err());
        assert!("flap:2000".parse::<Fault>().is_err());
        assert!("slow".parse::<Fault>().is_err());
    }

    #[test]
    fn the_json_form_is_the_mode_and_its_parameters() {
        let flap: Fault = serde_json::from_str(r#"{"mode":"flap","up_ms":5,"down_ms":7}"#).unwrap();
        assert_eq!(
            flap,
            Fault::Flap {
                up_ms: 5,
                down_ms: 7
            }
        );
        for fault in Fault::PLAIN {
            let json = serde_json::to_value(fault).unwrap();
            assert_eq!(json, serde_json::json!({ "mode": fault.name() }));
        }
    }
}
