//! A hostile gateway on 127.0.0.1 for the tests: redirects, answers that
//! never end or announce hundreds of megabytes, answers that trickle; and the
//! real binary set up as a merchant's till pointed at it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the hostile gateway answers on one connection.
#[derive(Clone, Copy, Debug)]
pub enum Hostile {
    /// 307 to this port on 127.0.0.1, with the request's secrets in the query.
    Redirect(u16),
    /// `Content-Length: 300 MB`, then bytes for as long as the client reads.
    HugeLength,
    /// `Transfer-Encoding: chunked`, chunks forever.
    EndlessChunked,
    /// No length at all (the body ends at close), bytes forever.
    EndlessUnannounced,
    /// A 1000-byte answer, one byte every 50 ms.
    Trickle,
}

pub const HUGE: u64 = 300 * 1024 * 1024;

pub struct Listener {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl Listener {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// A listener that counts the connections it accepts and answers none.
pub async fn counting_listener() -> Listener {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    Listener { addr, accepted }
}

/// A gateway that answers the n-th connection (0-based) as `pick(n)` says.
pub async fn hostile(pick: impl Fn(usize) -> Hostile + Send + Sync + 'static) -> Listener {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let pick = Arc::new(pick);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let n = count.fetch_add(1, Ordering::SeqCst);
            let how = pick(n);
            tokio::spawn(async move {
                let _ = answer(socket, how).await;
            });
        }
    });
    Listener { addr, accepted }
}

/// Reads one request (headers and body), then misbehaves.
async fn answer(mut socket: TcpStream, how: Hostile) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    let header_end = loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
        if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&request[..header_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while request.len() < header_end + length {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let filler = vec![b'x'; 16 * 1024];
    match how {
        Hostile::Redirect(port) => {
            let reply = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{port}/pay/micropay?auth_code=134539517967686076&key=LEAK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            socket.write_all(reply.as_bytes()).await?;
        }
        Hostile::HugeLength => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {HUGE}\r\n\r\n<xml><a>"
            );
            socket.write_all(head.as_bytes()).await?;
            let mut sent = 0u64;
            while sent < HUGE {
                socket.write_all(&filler).await?;
                sent += filler.len() as u64;
            }
        }
        Hostile::EndlessChunked => {
            socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n<xml><a>\r\n",
                )
                .await?;
            let chunk = [
                format!("{:x}\r\n", filler.len()).into_bytes(),
                filler.clone(),
                b"\r\n".to_vec(),
            ]
            .concat();
            loop {
                socket.write_all(&chunk).await?;
            }
        }
        Hostile::EndlessUnannounced => {
            socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nConnection: close\r\n\r\n<xml><a>",
                )
                .await?;
            loop {
                socket.write_all(&filler).await?;
            }
        }
        Hostile::Trickle => {
            socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 1000\r\n\r\n",
                )
                .await?;
            for _ in 0..1000 {
                socket.write_all(b" ").await?;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    socket.shutdown().await
}

/// The real binary, with its data in `dir`, timings ÷ 100.
pub fn scanpay(dir: &Path) -> Command {
    let mut cmd = super::process::binary();
    super::process::scaled_timings(&mut cmd);
    cmd.env_remove("SCANPAY_API_KEY")
        .env("SCANPAY_JOURNAL_PATH", dir.join("journal.sqlite3"))
        .env("SCANPAY_LOG_DIR", dir.join("logs"))
        .env("SCANPAY_GATEWAY_READ_TIMEOUT_MS", "2000");
    cmd
}

/// `scanpay pay` as a merchant whose gateway is `base_url`.
pub fn pay_at(cmd: &mut Command, base_url: &str) {
    cmd.env("SCANPAY_GATEWAY_MODE", "wechat")
        .env("SCANPAY_GATEWAY_BASE_URL", base_url)
        .env("SCANPAY_MERCHANT_APPID", "wxd930ea5d5a258f4f")
        .env("SCANPAY_MERCHANT_MCH_ID", "10000100")
        .env("SCANPAY_API_KEY", super::process::KEY)
        .args(["pay", "--amount", "0.01", "--auth-code"])
        .arg(super::code().expose());
}
