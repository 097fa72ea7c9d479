//! An Azure Resource Manager contract server for tests. ARM has no emulator, so this
//! answers exactly the REST paths and api-versions the azure_mgmt clients send, keeping
//! resources in memory:
//!
//! | path (under `/subscriptions/{s}`) | methods | api-version |
//! |---|---|---|
//! | `/resourcegroups/{rg}` | PUT GET HEAD DELETE (202, polled) | 2021-04-01 |
//! | `/resourceGroups/{rg}/providers/Microsoft.Network/dnsZones/{zone}` | PUT GET DELETE | 2018-05-01 |
//! | `.../dnsZones/{zone}/{TYPE}/{name}` | PUT GET DELETE | 2018-05-01 |
//!
//! Behaviour follows the public Azure REST API specs (azure-rest-api-specs,
//! `resources/resource-manager/Microsoft.Resources/stable/2021-04-01/resources.json` and
//! `network/resource-manager/Microsoft.Network/stable/2018-05-01/dns.json`): 404 with an
//! ARM error body for missing resources, 400 for invalid names, 202 + `Location` for
//! resource group deletion (polled until done), a bearer token on every call, and 429 with
//! `Retry-After` on demand.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

#[derive(Default)]
struct Inner {
    /// Resources by lowercased id.
    resources: BTreeMap<String, Value>,
    /// Pending deletions: operation id -> (polls left, resource group id).
    operations: BTreeMap<String, (u32, String)>,
    requests: usize,
}

/// A running contract server.
pub struct Arm {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    inner: Arc<Mutex<Inner>>,
    throttle_every: Arc<AtomicUsize>,
}

fn respond(
    out: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &Value,
) -> std::io::Result<()> {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let reason = match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        _ => "Status",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n", text.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(text.as_bytes())?;
    out.flush()
}

fn error(code: &str, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message } })
}

impl Arm {
    /// Starts the server on a free loopback port.
    pub fn start() -> Arm {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let inner: Arc<Mutex<Inner>> = Arc::default();
        let throttle_every = Arc::new(AtomicUsize::new(0));
        let (i, t) = (inner.clone(), throttle_every.clone());
        let base = endpoint.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (i, t, base) = (i.clone(), t.clone(), base.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &i, &t, &base);
                });
            }
        });
        Arm {
            endpoint,
            inner,
            throttle_every,
        }
    }

    /// Answer every `n`-th request with 429 and `Retry-After: 1` (0 = never).
    pub fn throttle_every(&self, n: usize) {
        self.throttle_every.store(n, Ordering::SeqCst);
    }

    /// Ids of every resource, sorted.
    pub fn inventory(&self) -> Vec<String> {
        self.inner
            .lock()
            .unwrap()
            .resources
            .values()
            .map(|v| v["id"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// A resource by id (case-insensitive).
    pub fn get(&self, id: &str) -> Option<Value> {
        self.inner
            .lock()
            .unwrap()
            .resources
            .get(&id.to_ascii_lowercase())
            .cloned()
    }

    /// Changes a resource out of band.
    pub fn modify(&self, id: &str, f: impl FnOnce(&mut Value)) {
        let mut inner = self.inner.lock().unwrap();
        f(inner
            .resources
            .get_mut(&id.to_ascii_lowercase())
            .expect("resource exists"));
    }

    /// Deletes a resource out of band.
    pub fn remove(&self, id: &str) {
        self.inner
            .lock()
            .unwrap()
            .resources
            .remove(&id.to_ascii_lowercase());
    }
}

fn unsupported_api(out: &mut TcpStream, api: &str) -> std::io::Result<()> {
    respond(
        out,
        400,
        &[],
        &error(
            "InvalidApiVersionParameter",
            &format!("api-version `{api}` is not supported"),
        ),
    )
}

fn valid_rg(name: &str) -> bool {
    (1..=90).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.()".contains(c))
        && !name.ends_with('.')
}

fn serve(
    conn: TcpStream,
    inner: &Mutex<Inner>,
    throttle: &AtomicUsize,
    base: &str,
) -> std::io::Result<()> {
    let mut out = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line)?;
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
        headers.push(h.trim_end().to_string());
    }
    let header = |n: &str| {
        headers.iter().find_map(|h| {
            h.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.trim().to_string())
        })
    };
    let mut body = vec![
        0;
        header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    ];
    r.read_exact(&mut body)?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let api = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("api-version="))
        .unwrap_or("");

    let n = {
        let mut i = inner.lock().unwrap();
        i.requests += 1;
        i.requests
    };
    let every = throttle.load(Ordering::SeqCst);
    if every > 0 && n % every == 0 {
        return respond(
            &mut out,
            429,
            &[("retry-after", "1".into())],
            &error("TooManyRequests", "throttled"),
        );
    }
    if !header("authorization").is_some_and(|a| a.starts_with("Bearer ")) {
        return respond(
            &mut out,
            401,
            &[],
            &error("AuthenticationFailed", "no bearer token"),
        );
    }

    // Long-running operations.
    if let Some(op) = path.strip_prefix("/operations/") {
        let mut i = inner.lock().unwrap();
        let Some((left, rg)) = i.operations.get(op).cloned() else {
            return respond(&mut out, 404, &[], &error("NotFound", "no such operation"));
        };
        if left > 0 {
            i.operations.insert(op.into(), (left - 1, rg));
            return respond(
                &mut out,
                202,
                &[
                    ("location", format!("{base}/operations/{op}")),
                    ("retry-after", "0".into()),
                ],
                &Value::Null,
            );
        }
        i.operations.remove(op);
        let prefix = format!("{rg}/");
        i.resources
            .retain(|k, _| k != &rg && !k.starts_with(&prefix));
        return respond(&mut out, 200, &[], &Value::Null);
    }

    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let id = path.to_string();
    let key = path.to_ascii_lowercase();
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut i = inner.lock().unwrap();
    match lower
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["subscriptions", _, "resourcegroups", _] => {
            if api != "2021-04-01" {
                return unsupported_api(&mut out, api);
            }
            let name = segs[3];
            match method.as_str() {
                "PUT" => {
                    if !valid_rg(name) {
                        return respond(
                            &mut out,
                            400,
                            &[],
                            &error(
                                "InvalidResourceGroupName",
                                &format!("resource group name `{name}` is invalid"),
                            ),
                        );
                    }
                    let existed = i.resources.contains_key(&key);
                    let v = json!({ "id": id, "name": name, "type": "Microsoft.Resources/resourceGroups", "location": req["location"], "tags": req.get("tags").cloned().unwrap_or(json!({})), "properties": { "provisioningState": "Succeeded" } });
                    i.resources.insert(key, v.clone());
                    respond(&mut out, if existed { 200 } else { 201 }, &[], &v)
                }
                "GET" | "HEAD" if i.operations.values().any(|(_, rg)| *rg == key) => {
                    // A deletion in progress finishes after a few reads, like ARM's.
                    let op = i
                        .operations
                        .iter()
                        .find(|(_, (_, rg))| *rg == key)
                        .map(|(k, _)| k.clone())
                        .unwrap_or_default();
                    let (left, rg) = i.operations.get(&op).cloned().unwrap_or_default();
                    if left > 0 {
                        i.operations.insert(op, (left - 1, rg));
                        let mut v = i.resources.get(&key).cloned().unwrap_or(Value::Null);
                        v["properties"]["provisioningState"] = json!("Deleting");
                        return respond(&mut out, 200, &[], &v);
                    }
                    i.operations.remove(&op);
                    let prefix = format!("{rg}/");
                    i.resources
                        .retain(|k, _| k != &rg && !k.starts_with(&prefix));
                    respond(
                        &mut out,
                        404,
                        &[],
                        &error(
                            "ResourceGroupNotFound",
                            &format!("Resource group '{name}' could not be found."),
                        ),
                    )
                }
                "GET" | "HEAD" => match i.resources.get(&key) {
                    Some(v) if method == "GET" => respond(&mut out, 200, &[], v),
                    Some(_) => respond(&mut out, 204, &[], &Value::Null),
                    None => respond(
                        &mut out,
                        404,
                        &[],
                        &error(
                            "ResourceGroupNotFound",
                            &format!("Resource group '{name}' could not be found."),
                        ),
                    ),
                },
                "DELETE" => {
                    if !i.resources.contains_key(&key) {
                        return respond(
                            &mut out,
                            404,
                            &[],
                            &error(
                                "ResourceGroupNotFound",
                                &format!("Resource group '{name}' could not be found."),
                            ),
                        );
                    }
                    let op = format!("op{n}");
                    i.operations.insert(op.clone(), (2, key));
                    respond(
                        &mut out,
                        202,
                        &[
                            ("location", format!("{base}/operations/{op}")),
                            ("retry-after", "0".into()),
                        ],
                        &Value::Null,
                    )
                }
                _ => respond(&mut out, 400, &[], &error("MethodNotAllowed", &method)),
            }
        }
        ["subscriptions", _, "resourcegroups", rg, "providers", "microsoft.network", "dnszones", rest @ ..]
            if !rest.is_empty() =>
        {
            if api != "2018-05-01" {
                return unsupported_api(&mut out, api);
            }
            let rg_key = format!("/subscriptions/{}/resourcegroups/{rg}", lower[1]);
            if !i.resources.contains_key(&rg_key) {
                return respond(
                    &mut out,
                    404,
                    &[],
                    &error(
                        "ResourceGroupNotFound",
                        &format!("Resource group '{rg}' could not be found."),
                    ),
                );
            }
            let zone_key = format!("{rg_key}/providers/microsoft.network/dnszones/{}", rest[0]);
            let (is_zone, kind) = (
                rest.len() == 1,
                if rest.len() == 1 {
                    "dnszones"
                } else {
                    "recordsets"
                },
            );
            if !is_zone && !i.resources.contains_key(&zone_key) {
                return respond(
                    &mut out,
                    404,
                    &[],
                    &error("ParentResourceNotFound", "the DNS zone does not exist"),
                );
            }
            match method.as_str() {
                "PUT" => {
                    let v = if is_zone {
                        json!({ "id": id, "name": segs[7], "type": "Microsoft.Network/dnszones", "location": "global", "etag": format!("e{n}"), "tags": req.get("tags").cloned().unwrap_or(json!({})), "properties": { "nameServers": ["ns1-01.azure-dns.com.", "ns2-01.azure-dns.net."], "numberOfRecordSets": 2 } })
                    } else {
                        let mut props = req["properties"].clone();
                        props["fqdn"] =
                            json!(format!("{}.{}.", segs[9], segs[7]).replace("@.", ""));
                        json!({ "id": id, "name": segs[9], "type": format!("Microsoft.Network/dnszones/{}", segs[8]), "etag": format!("e{n}"), "properties": props })
                    };
                    let existed = i.resources.contains_key(&key);
                    i.resources.insert(key, v.clone());
                    respond(&mut out, if existed { 200 } else { 201 }, &[], &v)
                }
                "GET" => match i.resources.get(&key) {
                    Some(v) => respond(&mut out, 200, &[], v),
                    None => respond(
                        &mut out,
                        404,
                        &[],
                        &error("NotFound", &format!("The {kind} resource was not found.")),
                    ),
                },
                "DELETE" => {
                    let prefix = format!("{key}/");
                    let existed = i.resources.remove(&key).is_some();
                    i.resources.retain(|k, _| !k.starts_with(&prefix));
                    respond(&mut out, if existed { 200 } else { 204 }, &[], &Value::Null)
                }
                _ => respond(&mut out, 400, &[], &error("MethodNotAllowed", &method)),
            }
        }
        _ => respond(
            &mut out,
            404,
            &[],
            &error(
                "InvalidResourceType",
                &format!("no route for {method} {path}"),
            ),
        ),
    }
}
