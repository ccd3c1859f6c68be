//! The HTTP exporter of the metrics (`global { metrics listen=... }`): the few lines of HTTP/1.1
//! a Prometheus scraper needs. `GET /metrics` (or `HEAD`) is answered with
//! [`Metrics::encode`], anything else with 404, 405, 400 or 431; one request per connection,
//! bounded in size, time and connections served at once. Hand-written rather than a web
//! framework: one path, one method, nothing else to serve.
//!
//! The daemon runs it on a thread of its own ([`spawn_thread`]): encoding a scrape never takes
//! the event loop's time, it reads the rows the loop last published. A new connection is
//! always accepted: when [`MAX_CONNECTIONS`] are open, the oldest one that has not sent its
//! request yet (else the oldest) is closed for it, so idle clients cannot keep a scrape out.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use super::metrics::Metrics;

/// The `Content-Type` of a scrape's answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Largest request head read; a longer one is refused.
const MAX_REQUEST: usize = 8 * 1024;
/// A client must send its request and take the answer within this.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections open at once; a new one closes the oldest idle one (see the module).
const MAX_CONNECTIONS: usize = 16;

/// Starts the exporter on a thread of its own, with its own single-threaded runtime, on a
/// listener bound by the caller (so that a bind error is the caller's, at start-up).
pub fn spawn_thread(
    listener: std::net::TcpListener,
    metrics: Arc<Metrics>,
) -> io::Result<std::thread::JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("upkeep-metrics".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::warn!("metrics endpoint not started: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                let served = match TcpListener::from_std(listener) {
                    Ok(l) => serve_listener(l, metrics).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = served {
                    tracing::warn!("metrics endpoint stopped: {e}");
                }
            });
        })
}

/// Binds `addr` and answers scrapes until the task is dropped. Fails when it cannot bind, or
/// when accepting connections fails for good.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    serve_listener(listener, metrics).await
}

/// [`serve`] on a listener already bound (so that the caller sees a bind error at once, or
/// binds port 0 in a test). HTTP/1.1, one request per connection: `GET /metrics` (or `HEAD`)
/// is answered with the exposition, anything else with 404 or 405.
pub async fn serve_listener(listener: TcpListener, metrics: Arc<Metrics>) -> io::Result<()> {
    let mut open: VecDeque<Conn> = VecDeque::new();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) if transient(&e) => {
                tracing::warn!("metrics endpoint: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        open.retain(|c| !c.task.is_finished());
        if open.len() >= MAX_CONNECTIONS {
            let idle = open.iter().position(|c| !c.asked.load(Ordering::Relaxed));
            if let Some(old) = open.remove(idle.unwrap_or(0)) {
                old.task.abort();
                tracing::debug!(%peer, "metrics endpoint: {MAX_CONNECTIONS} connections open; closed the oldest {}",
                    if idle.is_some() { "idle one" } else { "one" });
            }
        }
        let metrics = Arc::clone(&metrics);
        let asked = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&asked);
        let task = tokio::spawn(async move {
            let answered = tokio::time::timeout(IO_TIMEOUT, answer(stream, &metrics, &flag)).await;
            match answered {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, "metrics scrape failed: {e}"),
                Err(_) => tracing::debug!(%peer, "metrics scrape timed out"),
            }
        });
        open.push_back(Conn {
            task: task.abort_handle(),
            asked,
        });
    }
}

/// An open connection, oldest first in the server's list.
struct Conn {
    task: AbortHandle,
    /// Its request has been read: it is being answered, not idle.
    asked: Arc<AtomicBool>,
}

/// Accept errors that say nothing about the listener itself (a client gone, no file
/// descriptors left for now).
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::EPROTO)
    )
}

/// What a request asked for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Metrics { head: bool },
    OtherMethod,
    NotFound,
    Bad,
    TooLarge,
}

/// Reads one request head (up to the blank line) and answers it; the connection then closes.
async fn answer(mut stream: TcpStream, metrics: &Metrics, asked: &AtomicBool) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let request = loop {
        if let Some(end) = find_head_end(&buf) {
            break parse_request(&buf[..end]);
        }
        if buf.len() >= MAX_REQUEST {
            break Request::TooLarge;
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            // The client closed before finishing its request: nobody to answer.
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    asked.store(true, Ordering::Relaxed);
    let response = match request {
        Request::Metrics { head } => {
            let body = metrics.encode();
            let mut r = header("200 OK", CONTENT_TYPE, body.len(), "");
            if !head {
                r.push_str(&body);
            }
            r
        }
        Request::OtherMethod => plain(
            "405 Method Not Allowed",
            "only GET is served here\n",
            "Allow: GET, HEAD\r\n",
        ),
        Request::NotFound => plain("404 Not Found", "the metrics are at /metrics\n", ""),
        Request::Bad => plain("400 Bad Request", "not an HTTP request\n", ""),
        Request::TooLarge => plain(
            "431 Request Header Fields Too Large",
            "request too large\n",
            "",
        ),
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    // Closing with unread input makes the kernel reset the connection, which can destroy the
    // answer before the client reads it: take what the client still sends (bounded), then close.
    let drain = async {
        let mut rest = [0u8; 1024];
        let mut drained = 0;
        while drained < 16 * MAX_REQUEST {
            match stream.read(&mut rest).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    Ok(())
}

fn header(status: &str, content_type: &str, len: usize, extra: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n{extra}Connection: close\r\n\r\n"
    )
}

fn plain(status: &str, body: &str, extra: &str) -> String {
    let mut r = header(status, "text/plain; charset=utf-8", body.len(), extra);
    r.push_str(body);
    r
}

/// Where the request head ends (after `\r\n\r\n`, or a bare `\n\n` from a lax client).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn parse_request(head: &[u8]) -> Request {
    let Ok(text) = std::str::from_utf8(head) else {
        return Request::Bad;
    };
    let line = text.lines().next().unwrap_or("");
    let mut words = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (words.next(), words.next(), words.next())
    else {
        return Request::Bad;
    };
    if !version.starts_with("HTTP/1.") || words.next().is_some() {
        return Request::Bad;
    }
    let path = target.split(['?', '#']).next().unwrap_or("");
    // An absolute-form target (`GET http://host:9650/metrics`) names the same path.
    let path = match path.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => path,
    };
    if path != "/metrics" {
        return Request::NotFound;
    }
    match method {
        "GET" => Request::Metrics { head: false },
        "HEAD" => Request::Metrics { head: true },
        _ => Request::OtherMethod,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::metrics::tests::{has, instance};

    #[test]
    fn requests_are_parsed() {
        let p = |s: &str| parse_request(s.as_bytes());
        assert_eq!(
            p("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Request::Metrics { head: false }
        );
        assert_eq!(
            p("GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Request::Metrics { head: false }
        );
        assert_eq!(
            p("GET http://127.0.0.1:9650/metrics HTTP/1.1\r\n\r\n"),
            Request::Metrics { head: false }
        );
        assert_eq!(
            p("HEAD /metrics HTTP/1.1\r\n\r\n"),
            Request::Metrics { head: true }
        );
        assert_eq!(p("POST /metrics HTTP/1.1\r\n\r\n"), Request::OtherMethod);
        assert_eq!(p("GET / HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(p("GET /metricsx HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(p("hello\r\n\r\n"), Request::Bad);
        assert_eq!(p("GET /metrics SPDY/3\r\n\r\n"), Request::Bad);
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\n"), Some(16));
    }

    /// Sends `request` to the server and reads the whole answer (the server closes).
    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(request).await.expect("write");
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
            .await
            .expect("answered in time")
            .expect("read");
        String::from_utf8(out).expect("utf-8")
    }

    #[tokio::test]
    async fn a_real_scrape_over_tcp() {
        let metrics = Arc::new(Metrics::new());
        metrics.set_instances(vec![instance("web", 51, "master")]);
        metrics.observe_check("port80", "script", true, Duration::from_millis(5));
        metrics.reload("applied");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(serve_listener(listener, Arc::clone(&metrics)));

        let answer = exchange(
            addr,
            b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/openmetrics-text\r\n\r\n",
        )
        .await;
        let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(
            head.contains(&format!("\r\nContent-Type: {CONTENT_TYPE}\r\n")),
            "{head}"
        );
        assert!(
            head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())),
            "{head}"
        );
        assert!(head.contains("\r\nConnection: close"), "{head}");
        for family in [
            "# TYPE upkeep_instance_state gauge",
            "# TYPE upkeep_instance_priority gauge",
            "# TYPE upkeep_instance_effective_priority gauge",
            "# TYPE upkeep_instance_transitions counter",
            "# TYPE upkeep_instance_adverts_sent counter",
            "# TYPE upkeep_instance_adverts_received counter",
            "# TYPE upkeep_instance_drops counter",
            "# TYPE upkeep_check_results counter",
            "# TYPE upkeep_check_duration_seconds histogram",
            "# TYPE upkeep_reloads counter",
            "# TYPE upkeep_control_refused counter",
        ] {
            has(body, family);
        }
        has(
            body,
            r#"upkeep_instance_state{name="web",interface="eth0",vrid="51",state="master"} 1"#,
        );
        assert!(body.ends_with("# EOF\n"));

        // The daemon's updates show in the next scrape.
        metrics.reload("refused");
        let answer = exchange(addr, b"GET /metrics HTTP/1.0\r\n\r\n").await;
        has(&answer, r#"upkeep_reloads_total{result="refused"} 1"#);

        let answer = exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\n"), "HEAD has no body: {answer}");

        let answer = exchange(addr, b"GET / HTTP/1.1\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{answer}");
        let answer = exchange(addr, b"DELETE /metrics HTTP/1.1\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}");
        assert!(answer.contains("\r\nAllow: GET, HEAD\r\n"), "{answer}");
        let answer = exchange(addr, b"garbage\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");

        // A request that never ends is cut off at the size bound, not read forever.
        let huge = format!(
            "GET /metrics HTTP/1.1\r\nX: {}\r\n",
            "a".repeat(MAX_REQUEST)
        );
        let answer = exchange(addr, huge.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");

        // A client that goes away without a request does not stop the server.
        drop(TcpStream::connect(addr).await.expect("connect"));
        let answer = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");

        server.abort();
    }

    /// More idle clients than connections served at once: a scrape behind them is answered
    /// (before, it waited for them to time out, one batch of 16 after another).
    #[tokio::test]
    async fn idle_connections_do_not_keep_a_scrape_out() {
        let metrics = Arc::new(Metrics::new());
        metrics.set_instances(vec![instance("web", 51, "master")]);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(serve_listener(listener, Arc::clone(&metrics)));
        let mut idle = Vec::new();
        for _ in 0..2 * MAX_CONNECTIONS {
            idle.push(TcpStream::connect(addr).await.expect("connect"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let scrape = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
        let answer = tokio::time::timeout(IO_TIMEOUT / 2, scrape)
            .await
            .expect("answered before the idle clients time out");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        drop(idle);
        server.abort();
    }

    #[tokio::test]
    async fn serve_reports_a_bind_error() {
        let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = taken.local_addr().expect("addr");
        let err = serve(addr, Arc::new(Metrics::new()))
            .await
            .expect_err("the port is taken");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}
