//! The balancer's metrics over a socket, as Prometheus scrapes them: HTTP
//! `GET /metrics` on a loopback TCP port (`--metrics-listen
//! 127.0.0.1:9101`) or a unix socket (`--metrics-listen unix:/run/x.sock`,
//! for `curl --unix-socket`). One thread answers, one client at a time,
//! each with a short timeout, from the text of the last round: a slow or
//! hostile client never holds up the balancing loop, which only swaps the
//! text under a lock.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where the metrics are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// How long one client may take to send its request and read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// The most of a request read (the request line and headers).
const REQUEST_MAX: usize = 8192;

/// `unix:<path>` or `<ip>:<port>` on a loopback address (no
/// authentication: the figures are not for the network).
pub fn parse_listen(s: &str) -> Result<Listen, String> {
    if let Some(p) = s.strip_prefix("unix:") {
        if p.is_empty() {
            return Err(format!("--metrics-listen {s}: no socket path"));
        }
        return Ok(Listen::Unix(PathBuf::from(p)));
    }
    let a: SocketAddr = s
        .parse()
        .map_err(|_| format!("--metrics-listen {s}: expected unix:<path> or <ip>:<port>"))?;
    if !a.ip().is_loopback() {
        return Err(format!(
            "--metrics-listen {s}: not a loopback address (use 127.0.0.1 or ::1)"
        ));
    }
    Ok(Listen::Tcp(a))
}

/// The serving thread's side: the text it answers with.
pub struct Exporter {
    text: Arc<Mutex<String>>,
    unix_path: Option<PathBuf>,
    /// The address bound (the port, when 0 was asked for).
    pub local: Option<SocketAddr>,
}

impl Exporter {
    /// Binds and starts the thread. A unix socket left by a dead daemon is
    /// replaced; one that still answers is an error.
    pub fn start(listen: &Listen) -> Result<Exporter, String> {
        let text = Arc::new(Mutex::new(String::new()));
        let shared = text.clone();
        match listen {
            Listen::Tcp(a) => {
                let l = TcpListener::bind(a).map_err(|e| format!("--metrics-listen {a}: {e}"))?;
                let local = l.local_addr().ok();
                std::thread::Builder::new()
                    .name("metrics".into())
                    .spawn(move || {
                        for c in l.incoming().flatten() {
                            let _ = c.set_read_timeout(Some(CLIENT_TIMEOUT));
                            let _ = c.set_write_timeout(Some(CLIENT_TIMEOUT));
                            answer(c, &shared);
                        }
                    })
                    .map_err(|e| format!("metrics thread: {e}"))?;
                Ok(Exporter {
                    text,
                    unix_path: None,
                    local,
                })
            }
            Listen::Unix(p) => {
                let shown = p.display();
                if p.exists() {
                    if UnixStream::connect(p).is_ok() {
                        return Err(format!("--metrics-listen unix:{shown}: in use"));
                    }
                    std::fs::remove_file(p)
                        .map_err(|e| format!("--metrics-listen unix:{shown}: {e}"))?;
                }
                let l = UnixListener::bind(p)
                    .map_err(|e| format!("--metrics-listen unix:{shown}: {e}"))?;
                std::thread::Builder::new()
                    .name("metrics".into())
                    .spawn(move || {
                        for c in l.incoming().flatten() {
                            let _ = c.set_read_timeout(Some(CLIENT_TIMEOUT));
                            let _ = c.set_write_timeout(Some(CLIENT_TIMEOUT));
                            answer(c, &shared);
                        }
                    })
                    .map_err(|e| format!("metrics thread: {e}"))?;
                Ok(Exporter {
                    text,
                    unix_path: Some(p.clone()),
                    local: None,
                })
            }
        }
    }

    /// The text the next scrape gets.
    pub fn set(&self, text: String) {
        if let Ok(mut t) = self.text.lock() {
            *t = text;
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Some(p) = &self.unix_path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The answer to one request (status line and body).
fn respond(request: &[u8], text: &str) -> (&'static str, String) {
    let line = request.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    match (words.next(), words.next()) {
        (Some("GET"), Some("/metrics" | "/")) => ("200 OK", text.to_string()),
        (Some("GET"), _) => ("404 Not Found", "not found: try /metrics\n".into()),
        _ => ("405 Method Not Allowed", "only GET\n".into()),
    }
}

fn answer<S: Read + Write>(mut c: S, text: &Mutex<String>) {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while req.len() < REQUEST_MAX && !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let body = text.lock().map(|t| t.clone()).unwrap_or_default();
    let (status, body) = respond(&req, &body);
    let head = format!(
        "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = c.write_all(head.as_bytes());
    let _ = c.write_all(body.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(mut c: impl Read + Write, req: &str) -> String {
        c.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen("127.0.0.1:9101"),
            Ok(Listen::Tcp("127.0.0.1:9101".parse().unwrap()))
        );
        assert_eq!(
            parse_listen("unix:/run/m.sock"),
            Ok(Listen::Unix("/run/m.sock".into()))
        );
        assert!(parse_listen("[::1]:0").is_ok());
        assert!(parse_listen("0.0.0.0:9101")
            .unwrap_err()
            .contains("not a loopback"));
        assert!(parse_listen("unix:").is_err());
        assert!(parse_listen("localhost").is_err());
    }

    #[test]
    fn serves_the_last_text_over_tcp_and_a_unix_socket() {
        let e = Exporter::start(&parse_listen("127.0.0.1:0").unwrap()).unwrap();
        let at = e.local.unwrap();
        e.set("umlbalance_rounds_total 3\n".into());
        let r = get(
            std::net::TcpStream::connect(at).unwrap(),
            "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        assert!(r.starts_with("HTTP/1.0 200 OK\r\n"), "{r}");
        assert!(r.contains("Content-Type: text/plain; version=0.0.4"), "{r}");
        assert!(r.ends_with("\r\n\r\numlbalance_rounds_total 3\n"), "{r}");
        e.set("umlbalance_rounds_total 4\n".into());
        let r = get(
            std::net::TcpStream::connect(at).unwrap(),
            "GET / HTTP/1.0\r\n\r\n",
        );
        assert!(r.ends_with("umlbalance_rounds_total 4\n"), "{r}");
        let r = get(
            std::net::TcpStream::connect(at).unwrap(),
            "GET /x HTTP/1.0\r\n\r\n",
        );
        assert!(r.starts_with("HTTP/1.0 404"), "{r}");
        let r = get(
            std::net::TcpStream::connect(at).unwrap(),
            "POST / HTTP/1.0\r\n\r\n",
        );
        assert!(r.starts_with("HTTP/1.0 405"), "{r}");
        // A client that sends nothing and hangs up gets an answer of its own
        // and does not stop the next one.
        drop(std::net::TcpStream::connect(at).unwrap());
        let r = get(
            std::net::TcpStream::connect(at).unwrap(),
            "GET /metrics HTTP/1.0\r\n\r\n",
        );
        assert!(r.starts_with("HTTP/1.0 200"), "{r}");

        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.sock");
        // A stale socket file (nobody listening) is replaced.
        drop(UnixListener::bind(&p).unwrap());
        let u = Exporter::start(&Listen::Unix(p.clone())).unwrap();
        u.set("x 1\n".into());
        let r = get(
            UnixStream::connect(&p).unwrap(),
            "GET /metrics HTTP/1.0\r\n\r\n",
        );
        assert!(r.ends_with("\r\n\r\nx 1\n"), "{r}");
        // One that answers is in use.
        let again = Exporter::start(&Listen::Unix(p.clone()));
        assert!(again.err().unwrap().contains("in use"));
        drop(u);
        assert!(!p.exists(), "the socket file stays after the exporter");
    }
}
