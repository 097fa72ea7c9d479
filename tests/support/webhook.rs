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
//! connection (`Connection: close`, see `http.rs`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::http::{self, reply, Reply, Req};

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

impl Receiver {
    /// Starts a receiver that checks signatures against `secret`, on a free loopback port.
    pub fn start(secret: &str) -> Receiver {
        let (listener, endpoint) = http::listen();
        let inner = Arc::new(Mutex::new(Inner {
            secret: secret.into(),
            fail: 0,
            attempts: 0,
            deliveries: Vec::new(),
        }));
        http::serve(listener, inner.clone(), receive);
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

/// The answer to `req`; records it when accepted.
fn receive(i: &mut Inner, req: &Req) -> Reply {
    let text = |status: u16, t: &str| reply(status, json!({ "message": t }));
    if req.method != "POST" {
        let mut r = text(405, "only POST is accepted");
        r.headers.push(("allow", "POST".into()));
        return r;
    }
    i.attempts += 1;
    if i.fail > 0 {
        i.fail -= 1;
        return text(500, "failing on purpose");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return text(400, "the body is not JSON");
    };
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in &req.headers {
        headers
            .entry(k.to_ascii_lowercase())
            .and_modify(|old| {
                old.push_str(", ");
                old.push_str(v);
            })
            .or_insert_with(|| v.clone());
    }
    let signature_valid = headers
        .get("x-hub-signature-256")
        .is_some_and(|s| *s == signature(&i.secret, &req.body));
    i.deliveries.push(Delivery {
        path: req.target(),
        headers,
        body,
        signature_valid,
    });
    reply(204, Value::Null)
}
