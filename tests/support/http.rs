//! The HTTP plumbing of the test stand-ins (GitHub, GitLab, webhook receiver): a listener
//! on a free loopback port, one request per connection answered with `connection: close`,
//! JSON bodies, and query strings decoded as forms.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// One parsed HTTP request.
pub struct Req {
    /// Method.
    pub method: String,
    /// Path, without the query.
    pub path: String,
    /// Query string, undecoded.
    pub query: String,
    /// Headers as sent.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Req {
    /// The first header named `n` (any case).
    pub fn header(&self, n: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    }

    /// `path?query`, as the request line had it.
    pub fn target(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }
}

/// One response; a `null` body is sent empty.
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// JSON body.
    pub body: Value,
}

/// A response without extra headers.
pub fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status,
        headers: vec![],
        body,
    }
}

/// A listener on a free loopback port, and its `http://127.0.0.1:PORT`.
pub fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    (listener, endpoint)
}

/// Answers each request on `listener` with `route` over `state`, a thread per connection.
pub fn serve<S: Send + 'static>(
    listener: TcpListener,
    state: Arc<Mutex<S>>,
    route: fn(&mut S, &Req) -> Reply,
) {
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let state = state.clone();
            std::thread::spawn(move || {
                let _ = answer(conn, &state, route);
            });
        }
    });
}

fn answer<S>(
    conn: TcpStream,
    state: &Mutex<S>,
    route: fn(&mut S, &Req) -> Reply,
) -> std::io::Result<()> {
    let mut out = conn.try_clone()?;
    let req = read_request(&conn)?;
    let r = route(&mut state.lock().unwrap(), &req);
    write_reply(&mut out, &r)
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
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Ok(Req {
        method,
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        422 => "Unprocessable Entity",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

fn write_reply(out: &mut TcpStream, r: &Reply) -> std::io::Result<()> {
    let text = if r.body.is_null() {
        String::new()
    } else {
        r.body.to_string()
    };
    let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    if r.status != 204 {
        head.push_str(&format!(
            "content-type: application/json; charset=utf-8\r\ncontent-length: {}\r\n",
            text.len()
        ));
    }
    head.push_str("connection: close\r\n");
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Query parameters, decoded as `application/x-www-form-urlencoded`.
pub fn params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k, true), decode(v, true))
        })
        .collect()
}

/// The first parameter named `name`.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `%XX` escapes undone, and with `plus` (forms and queries) `+` read as a space.
pub fn decode(s: &str, plus: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut at = 0;
    while at < b.len() {
        if b[at] == b'%' {
            let byte = s
                .get(at + 1..at + 3)
                .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(byte) = byte {
                out.push(byte);
                at += 3;
                continue;
            }
        }
        out.push(if plus && b[at] == b'+' { b' ' } else { b[at] });
        at += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
