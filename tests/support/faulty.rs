//! A loopback HTTP proxy in front of moto that answers a share of requests with
//! throttling errors or 503s, in the wire format of each AWS protocol: every `every`-th
//! request, or on a seeded schedule that does not depend on the order concurrent
//! requests arrive in.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A running proxy.
pub struct FaultyProxy {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    faults: Arc<AtomicUsize>,
}

/// Which requests get a fault.
#[derive(Clone)]
enum Schedule {
    /// Every n-th request in arrival order.
    Every(usize),
    /// The first `budget(key)` requests of each distinct request (method, path and query,
    /// `x-amz-target`), where the budget (0 to 3) is a hash of the seed and the key: so
    /// some requests pass, some fail within the SDK's own attempts, and some fail all
    /// three and reach the engine's retries, whatever order they arrive in.
    Seeded(u64, Arc<Mutex<HashMap<String, usize>>>),
}

impl Schedule {
    fn faults(&self, head: &[String], count: &AtomicUsize) -> bool {
        match self {
            Schedule::Every(every) => {
                (count.fetch_add(1, Ordering::SeqCst) + 1).is_multiple_of(*every)
            }
            Schedule::Seeded(seed, seen) => {
                let target = head
                    .iter()
                    .find(|h| h.to_ascii_lowercase().starts_with("x-amz-target:"))
                    .map(String::as_str)
                    .unwrap_or_default();
                let key = format!(
                    "{} {target}",
                    head.first().map(String::as_str).unwrap_or_default()
                );
                // FNV-1a: stable across runs and platforms.
                let budget = key.bytes().fold(0xcbf2_9ce4_8422_2325 ^ seed, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                }) % 4;
                let mut seen = seen.lock().unwrap();
                let n = seen.entry(key).or_default();
                *n += 1;
                *n as u64 <= budget
            }
        }
    }
}

/// What the proxy answers instead of forwarding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Throttling errors and 503s, alternating.
    Throttle,
    /// Throttling errors only, in each protocol's format.
    ThrottleOnly,
    /// 403 AccessDenied.
    Deny,
}

impl FaultyProxy {
    /// Forwards to `upstream` (`host:port`), answering every `every`-th request with a fault.
    pub fn start(upstream: &str, every: usize) -> FaultyProxy {
        Self::start_with(upstream, every, Fault::Throttle)
    }

    /// Forwards to `upstream`, answering on a seeded schedule (see `Schedule::Seeded`).
    pub fn seeded(upstream: &str, seed: u64) -> FaultyProxy {
        Self::run(
            upstream,
            Schedule::Seeded(seed, Arc::default()),
            Fault::Throttle,
        )
    }

    /// Like `start`, with the kind of fault.
    pub fn start_with(upstream: &str, every: usize, kind: Fault) -> FaultyProxy {
        Self::run(upstream, Schedule::Every(every), kind)
    }

    fn run(upstream: &str, schedule: Schedule, kind: Fault) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let faults = Arc::new(AtomicUsize::new(0));
        let count = Arc::new(AtomicUsize::new(0));
        let (up, f) = (upstream.to_string(), faults.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (up, f, count, schedule) =
                    (up.clone(), f.clone(), count.clone(), schedule.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &up, &f, &count, &schedule, kind);
                });
            }
        });
        FaultyProxy { endpoint, faults }
    }

    /// How many requests were answered with a fault.
    pub fn faults(&self) -> usize {
        self.faults.load(Ordering::SeqCst)
    }
}

/// Reads one request: head lines and raw body bytes (content-length or chunked).
fn read_request(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<(Vec<String>, Vec<u8>)>> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if line == "\r\n" {
            break;
        }
        head.push(line.trim_end().to_string());
    }
    let header = |name: &str| {
        head.iter().find_map(|h| {
            h.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
        })
    };
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            body.extend_from_slice(size.as_bytes());
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            if n == 0 {
                loop {
                    let mut t = String::new();
                    r.read_line(&mut t)?;
                    body.extend_from_slice(t.as_bytes());
                    if t == "\r\n" || t.is_empty() {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            body.extend(chunk);
        }
    } else if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    }
    Ok(Some((head, body)))
}

fn fault(head: &[String], n: usize) -> String {
    let has = |name: &str| {
        head.iter()
            .any(|h| h.to_ascii_lowercase().starts_with(name))
    };
    let (status, ctype, body) = if n % 2 == 1 {
        ("503 Service Unavailable", "text/plain", String::new())
    } else if has("x-amz-target:") {
        (
            "400 Bad Request",
            "application/x-amz-json-1.1",
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_string(),
        )
    } else if head.first().is_some_and(|l| l.contains(" /2013-04-01/")) {
        (
            "400 Bad Request",
            "text/xml",
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>".to_string(),
        )
    } else {
        ("503 Slow Down", "application/xml", "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>".to_string())
    };
    format!("HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
}

fn denied(head: &[String]) -> String {
    let json = head
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("x-amz-target:"));
    let (ctype, body) = if json {
        (
            "application/x-amz-json-1.1",
            r#"{"__type":"AccessDeniedException","message":"User is not authorized"}"#.to_string(),
        )
    } else {
        (
            "application/xml",
            "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>".to_string(),
        )
    };
    format!("HTTP/1.1 403 Forbidden\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
}

fn serve(
    conn: TcpStream,
    upstream: &str,
    faults: &AtomicUsize,
    count: &AtomicUsize,
    schedule: &Schedule,
    kind: Fault,
) -> std::io::Result<()> {
    let mut out = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    let Some((head, body)) = read_request(&mut reader)? else {
        return Ok(());
    };
    if schedule.faults(&head, count) {
        let k = faults.fetch_add(1, Ordering::SeqCst);
        let answer = match kind {
            Fault::Throttle => fault(&head, k),
            Fault::ThrottleOnly => fault(&head, 0),
            Fault::Deny => denied(&head),
        };
        out.write_all(answer.as_bytes())?;
        return Ok(());
    }
    let mut up = TcpStream::connect(upstream)?;
    let mut req = String::new();
    for h in &head {
        if !h.to_ascii_lowercase().starts_with("connection:") {
            req.push_str(h);
            req.push_str("\r\n");
        }
    }
    req.push_str("connection: close\r\n\r\n");
    up.write_all(req.as_bytes())?;
    up.write_all(&body)?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp)?;
    // Tell the client the connection ends with this response.
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(resp.len());
    let head_text = String::from_utf8_lossy(&resp[..split]).to_string();
    let mut new_head = String::new();
    for l in head_text.split("\r\n").filter(|l| !l.is_empty()) {
        if !l.to_ascii_lowercase().starts_with("connection:") {
            new_head.push_str(l);
            new_head.push_str("\r\n");
        }
    }
    new_head.push_str("connection: close\r\n\r\n");
    out.write_all(new_head.as_bytes())?;
    out.write_all(&resp[split..])?;
    out.flush()
}
