//! A webhook receiver for tests: it takes JSON POSTs on any path, as a notification
//! endpoint would, and records each delivery with its headers and whether it was signed
//! with the shared secret the way GitHub signs its webhooks (docs.github.com/en/webhooks,
//! "Validating webhook deliveries"): `X-Hub-Signature-256: sha256=` and the lowercase hex
//! HMAC-SHA256 of the raw body under the secret.
//!
//! | request | answer |
//! |---|---|
//! | `POST {any path}`, JSON body | 204, recorded as a delivery |
//! | `POST {any path}` while failures are queued (`fail_next`) | 500, not recorded |
//! | `POST {any path}`, body not JSON | 400, not recorded |
//! | any other method | 405 |
//!
//! Every POST counts as an attempt, whatever it was answered. One request is served per
//! connection (`Connection: close`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// One accepted delivery.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The request target: the path, and the query if there was one.
    pub path: String,
    /// Request headers by lower-case name (a repeated header's values joined by `, `).
    pub headers: BTreeMap<String, String>,
    /// The JSON body.
    pub body: Value,
    /// Whether `x-hub-signature-256` is `sha256=` and the hex HMAC-SHA256 of the raw body.
    pub signature_valid: bool,
}

struct Inner {
    /// The shared signing secret.
    secret: String,
    /// POSTs still to answer with 500.
    fail: usize,
    /// Every POST received.
    attempts: usize,
    /// Accepted deliveries, in order.
    deliveries: Vec<Delivery>,
}

/// A running receiver.
pub struct Receiver {
    endpoint: String,
    inner: Arc<Mutex<Inner>>,
}

/// One parsed HTTP request.
struct Req {
    method: String,
    target: String,
    /// Headers by lower-case name.
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Receiver {
    /// Starts a receiver that checks signatures against `secret`, on a free loopback port.
    pub fn start(secret: &str) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let inner = Arc::new(Mutex::new(Inner {
            secret: secret.into(),
            fail: 0,
            attempts: 0,
            deliveries: Vec::new(),
        }));
        let i = inner.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let i = i.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &i);
                });
            }
        });
        Receiver { endpoint, inner }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap())
    }

    /// Answers the next `n` POSTs with 500.
    pub fn fail_next(&self, n: usize) {
        self.with(|i| i.fail = n);
    }

    /// The accepted (2xx) deliveries, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.with(|i| i.deliveries.clone())
    }

    /// Every POST received, failed ones included.
    pub fn attempts(&self) -> usize {
        self.with(|i| i.attempts)
    }
}

/// `sha256=` and the lowercase hex HMAC-SHA256 of `body` under `secret`.
fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn read_request(conn: &TcpStream) -> std::io::Result<Req> {
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        // Opened and closed without a request.
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            headers
                .entry(k)
                .and_modify(|old| {
                    old.push_str(", ");
                    old.push_str(v);
                })
                .or_insert_with(|| v.to_string());
        }
    }
    let len = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(Req {
        method,
        target,
        headers,
        body,
    })
}

fn write_reply(out: &mut TcpStream, status: u16, text: &str) -> std::io::Result<()> {
    let reason = match status {
        204 => "No Content",
        400 => "Bad Request",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    if status != 204 {
        head.push_str(&format!(
            "content-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n",
            text.len()
        ));
    }
    if status == 405 {
        head.push_str("allow: POST\r\n");
    }
    head.push_str("connection: close\r\n\r\n");
    out.write_all(head.as_bytes())?;
    if status != 204 {
        out.write_all(text.as_bytes())?;
    }
    out.flush()
}

fn serve(conn: TcpStream, inner: &Mutex<Inner>) -> std::io::Result<()> {
    let mut out = conn.try_clone()?;
    let req = read_request(&conn)?;
    let (status, text) = receive(&mut inner.lock().unwrap(), req);
    write_reply(&mut out, status, text)
}

/// The status and text answering `req`; records it when accepted.
fn receive(i: &mut Inner, req: Req) -> (u16, &'static str) {
    if req.method != "POST" {
        return (405, "only POST is accepted\n");
    }
    i.attempts += 1;
    if i.fail > 0 {
        i.fail -= 1;
        return (500, "failing on purpose\n");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return (400, "the body is not JSON\n");
    };
    let signature_valid = req
        .headers
        .get("x-hub-signature-256")
        .is_some_and(|s| *s == signature(&i.secret, &req.body));
    i.deliveries.push(Delivery {
        path: req.target,
        headers: req.headers,
        body,
        signature_valid,
    });
    (204, "")
}
