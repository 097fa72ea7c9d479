//! An Azure Resource Manager contract server for tests. ARM has no emulator, so this
//! answers exactly the REST paths and api-versions the azure_mgmt clients send, keeping
//! resources in memory:
//!
//! | path | methods | api-version |
//! |---|---|---|
//! | `/subscriptions/{s}/resourcegroups/{rg}` | PUT GET HEAD DELETE (202, polled) | 2021-04-01 |
//! | `.../resourceGroups/{rg}/providers/Microsoft.Network/dnsZones/{zone}` | PUT GET DELETE | 2018-05-01 |
//! | `.../dnsZones/{zone}/{TYPE}/{name}` | PUT GET DELETE (If-Match / If-None-Match: 412) | 2018-05-01 |
//! | `.../dnsZones/{zone}/recordsets` | GET (100 a page, `nextLink`) | 2018-05-01 |
//! | `.../resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{name}` | PUT (202, polled) GET DELETE | 2023-05-01 |
//! | `.../storageAccounts/{name}/listKeys` | POST | 2023-05-01 |
//! | `/subscriptions/{s}/providers/Microsoft.Storage/storageAccounts` | GET (list) | 2023-05-01 |
//! | `.../resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}` | PUT GET DELETE (soft delete) | 2019-09-01 |
//! | `/subscriptions/{s}/providers/Microsoft.KeyVault/locations/{l}/deletedVaults/{name}/purge` | POST (202, polled) | 2019-09-01 |
//! | operation URLs named by `Location` / `Azure-AsyncOperation` | GET | any |
//! | `/{tenant}/oauth2/v2.0/token` (Microsoft Entra ID client-credentials grant) | POST | – |
//!
//! It also answers DNS queries over UDP (`dns_addr`) from the record sets of its zones,
//! as Azure DNS name servers do, so an ACME server can check DNS-01 challenges.
//!
//! Behaviour follows the public Azure REST API specs (github.com/Azure/azure-rest-api-specs:
//! `resources/.../Microsoft.Resources/stable/2021-04-01/resources.json`,
//! `dns/.../Microsoft.Network/stable/2018-05-01/dns.json`,
//! `storage/.../Microsoft.Storage/stable/2023-05-01/storage.json`,
//! `keyvault/.../Microsoft.KeyVault/stable/2019-09-01/keyvault.json`) and the ARM
//! async-operation guidelines: 404 with an ARM error body for missing resources; 400 for
//! invalid names (`AccountNameInvalid`, `VaultNameNotValid`, `InvalidResourceGroupName`);
//! 409 for globally taken names (`StorageAccountAlreadyTaken`, `VaultAlreadyExists`) and
//! for a soft-deleted vault's name; 202 + `Location` + `Retry-After` for resource group
//! deletion, storage account creation and vault purges, finished after a set number of
//! polls; a bearer token on every call; 429 with `Retry-After` on demand. Storage
//! accounts list a fixed key (Azurite's well-known one) and a blob endpoint the test
//! chooses (Azurite's).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::http::{self, reply, Reply, Req};

/// The key every storage account lists (Azurite's well-known development key).
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// What finishes when an operation's polls run out.
#[derive(Clone)]
enum Done {
    /// Remove a resource group and everything in it.
    DeleteGroup(String),
    /// Mark a storage account `Succeeded`.
    FinishAccount(String),
    /// Forget a soft-deleted vault.
    PurgeVault(String),
}

struct Inner {
    /// `http://127.0.0.1:PORT`, for the URLs of operations and next pages.
    base: String,
    /// Resources by lowercased id.
    resources: BTreeMap<String, Value>,
    /// Soft-deleted vaults by lowercased name.
    deleted_vaults: BTreeMap<String, Value>,
    /// Running operations: id -> (polls left, what finishes, when it finishes unpolled).
    operations: BTreeMap<String, (u32, Done, std::time::Instant)>,
    requests: usize,
    polls: usize,
    /// Polls a new operation answers 202 to before it finishes.
    lro_polls: u32,
    /// Answer every n-th request with 429 (0 = never).
    throttle_every: usize,
    /// The blob endpoint of an account; `{name}` is replaced.
    blob_endpoint: String,
    /// The bearer token required (any when unset).
    token: Option<String>,
    /// DNS answers that lag behind the API: (lowercase name, type) -> records.
    stale: BTreeMap<(String, String), Vec<hickory_proto::rr::Record>>,
}

/// A running contract server.
pub struct Arm {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    inner: Arc<Mutex<Inner>>,
    dns: std::net::SocketAddr,
}

/// The `api-version` a request names.
fn api(req: &Req) -> String {
    http::param(&http::params(&req.query), "api-version")
        .unwrap_or_default()
        .to_string()
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    reply(
        status,
        json!({ "error": { "code": code, "message": message } }),
    )
}

fn not_found(kind: &str, name: &str) -> Reply {
    error(
        404,
        if kind == "Resource group" {
            "ResourceGroupNotFound"
        } else {
            "ResourceNotFound"
        },
        &format!("{kind} '{name}' could not be found."),
    )
}

impl Arm {
    /// Starts the server on a free loopback port.
    pub fn start() -> Arm {
        let (listener, endpoint) = http::listen();
        let inner = Arc::new(Mutex::new(Inner {
            base: endpoint.clone(),
            resources: BTreeMap::new(),
            deleted_vaults: BTreeMap::new(),
            operations: BTreeMap::new(),
            requests: 0,
            polls: 0,
            lro_polls: 2,
            throttle_every: 0,
            blob_endpoint: "https://{name}.blob.core.windows.net/".into(),
            token: None,
            stale: BTreeMap::new(),
        }));
        http::serve(listener, inner.clone(), route);
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let dns = udp.local_addr().unwrap();
        let i = inner.clone();
        std::thread::spawn(move || serve_dns(udp, &i));
        Arm {
            endpoint,
            inner,
            dns,
        }
    }

    /// `127.0.0.1:PORT` of the DNS name server of the zones.
    pub fn dns_addr(&self) -> String {
        self.dns.to_string()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap())
    }

    /// Answer every `n`-th request with 429 and `Retry-After: 1` (0 = never).
    pub fn throttle_every(&self, n: usize) {
        self.with(|i| i.throttle_every = n);
    }

    /// Polls each new long-running operation answers 202 to before it finishes.
    pub fn lro_polls(&self, n: u32) {
        self.with(|i| i.lro_polls = n);
    }

    /// Operation polls served so far.
    pub fn polls(&self) -> usize {
        self.with(|i| i.polls)
    }

    /// Storage accounts' blob endpoint, `{name}` standing for the account name.
    pub fn blob_endpoint(&self, template: &str) {
        self.with(|i| i.blob_endpoint = template.into());
    }

    /// Require this bearer token (as issued by the token endpoint) on every call.
    pub fn require_token(&self, token: &str) {
        self.with(|i| i.token = Some(token.into()));
    }

    /// Makes the name server answer a CNAME to `target` for `name` whatever the API
    /// holds, like a name server that has not caught up yet.
    pub fn serve_stale_cname(&self, name: &str, target: &str) {
        let owner = hickory_proto::rr::Name::from_ascii(format!("{name}.")).unwrap();
        let p = json!({ "TTL": 300, "CNAMERecord": { "cname": target } });
        let records = answers(&owner, &p);
        self.with(|i| {
            i.stale
                .insert((name.to_ascii_lowercase(), "cname".into()), records)
        });
    }

    /// Makes the name server answer from the API again.
    pub fn serve_fresh(&self) {
        self.with(|i| i.stale.clear());
    }

    /// Ids of every resource, sorted.
    pub fn inventory(&self) -> Vec<String> {
        self.with(|i| {
            i.resources
                .values()
                .map(|v| v["id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
    }

    /// Names of soft-deleted vaults.
    pub fn deleted_vaults(&self) -> Vec<String> {
        self.with(|i| i.deleted_vaults.keys().cloned().collect())
    }

    /// A resource by id (case-insensitive).
    pub fn get(&self, id: &str) -> Option<Value> {
        self.with(|i| i.resources.get(&id.to_ascii_lowercase()).cloned())
    }

    /// Creates a resource out of band (another team's, say).
    pub fn insert(&self, id: &str, v: Value) {
        self.with(|i| i.resources.insert(id.to_ascii_lowercase(), v));
    }

    /// Changes a resource out of band.
    pub fn modify(&self, id: &str, f: impl FnOnce(&mut Value)) {
        self.with(|i| {
            f(i.resources
                .get_mut(&id.to_ascii_lowercase())
                .expect("resource exists"))
        });
    }

    /// Deletes a resource out of band.
    pub fn remove(&self, id: &str) {
        self.with(|i| i.resources.remove(&id.to_ascii_lowercase()));
    }
}

/// Starts a long-running operation: 202 with its URL and `Retry-After`.
fn accepted(i: &mut Inner, base: &str, url_path: String, done: Done) -> Reply {
    let op = url_path.rsplit('/').next().unwrap_or_default().to_string();
    // Like ARM, an operation also finishes on its own, polled or not.
    let due = std::time::Instant::now() + OPERATION_TIME;
    i.operations.insert(op, (i.lro_polls, done, due));
    Reply {
        status: 202,
        headers: vec![
            ("location", format!("{base}{url_path}")),
            ("retry-after", "0".into()),
        ],
        body: Value::Null,
    }
}

fn finish(i: &mut Inner, done: Done) {
    match done {
        Done::DeleteGroup(rg) => {
            let prefix = format!("{rg}/");
            let gone: Vec<String> = i
                .resources
                .keys()
                .filter(|k| **k == rg || k.starts_with(&prefix))
                .cloned()
                .collect();
            for k in gone {
                if let Some(v) = i.resources.remove(&k) {
                    if k.contains("/providers/microsoft.keyvault/vaults/") {
                        let name = v["name"].as_str().unwrap_or_default().to_ascii_lowercase();
                        i.deleted_vaults.insert(name, v);
                    }
                }
            }
        }
        Done::FinishAccount(key) => {
            if let Some(v) = i.resources.get_mut(&key) {
                v["properties"]["provisioningState"] = json!("Succeeded");
            }
        }
        Done::PurgeVault(name) => {
            i.deleted_vaults.remove(&name);
        }
    }
}

fn valid_rg(name: &str) -> bool {
    (1..=90).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.()".contains(c))
        && !name.ends_with('.')
}

fn valid_account(name: &str) -> bool {
    (3..=24).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

fn valid_vault(name: &str) -> bool {
    (3..=24).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !name.contains("--")
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// The id of another resource of `kind` with the same (globally unique) name.
fn taken_elsewhere(i: &Inner, kind: &str, name: &str, key: &str) -> bool {
    let suffix = format!("/{kind}/{}", name.to_ascii_lowercase());
    i.resources.keys().any(|k| k != key && k.ends_with(&suffix))
}

/// How long an operation runs when nobody polls it.
const OPERATION_TIME: std::time::Duration = std::time::Duration::from_secs(20);

fn route(i: &mut Inner, req: &Req) -> Reply {
    let base = &i.base.clone();
    i.requests += 1;
    let now = std::time::Instant::now();
    let due: Vec<String> = i
        .operations
        .iter()
        .filter(|(_, (_, _, at))| *at <= now)
        .map(|(k, _)| k.clone())
        .collect();
    for op in due {
        if let Some((_, done, _)) = i.operations.remove(&op) {
            finish(i, done);
        }
    }
    if i.throttle_every > 0 && i.requests.is_multiple_of(i.throttle_every) {
        let mut r = error(429, "TooManyRequests", "throttled");
        r.headers.push(("retry-after", "1".into()));
        return r;
    }
    let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();

    // Microsoft Entra ID's token endpoint: client-credentials grant.
    if let [_tenant, "oauth2", "v2.0", "token"] = l.as_slice() {
        let form: BTreeMap<String, String> = String::from_utf8_lossy(&req.body)
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.replace("%2F", "/").replace("%3A", ":")))
            .collect();
        return match (form.get("client_id"), form.get("client_secret")) {
            (Some(id), Some(secret)) if secret != "wrong" => reply(
                200,
                json!({ "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": format!("entra-{id}") }),
            ),
            _ => reply(
                401,
                json!({ "error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided." }),
            ),
        };
    }

    let bearer = req.header("authorization").unwrap_or_default();
    let authorized = match &i.token {
        Some(t) => bearer == format!("Bearer {t}"),
        None => bearer.starts_with("Bearer "),
    };
    if !authorized {
        return error(
            401,
            "AuthenticationFailed",
            "the access token is missing or invalid",
        );
    }

    // Operation URLs handed out with 202s.
    if let [.., "operationresults" | "asyncoperations", op] = l.as_slice() {
        i.polls += 1;
        let Some((left, done, due)) = i.operations.get(*op).cloned() else {
            // Finished and forgotten, as ARM eventually does.
            return reply(200, Value::Null);
        };
        if left > 0 {
            i.operations.insert(op.to_string(), (left - 1, done, due));
            let mut r = reply(202, Value::Null);
            r.headers = vec![
                ("location", format!("{base}{}", req.path)),
                ("retry-after", "0".into()),
            ];
            return r;
        }
        i.operations.remove(*op);
        finish(i, done);
        return reply(200, Value::Null);
    }

    let sub = lower.get(1).cloned().unwrap_or_default();
    match l.as_slice() {
        ["subscriptions", _, "resourcegroups", _] => resource_group(i, req, &segs, base),
        ["subscriptions", _, "providers", "microsoft.storage", "storageaccounts"] => {
            if api(req) != "2023-05-01" {
                return unsupported_api(&api(req));
            }
            let value: Vec<Value> = i
                .resources
                .iter()
                .filter(|(k, _)| {
                    k.starts_with(&format!("/subscriptions/{sub}/"))
                        && k.contains("/providers/microsoft.storage/storageaccounts/")
                })
                .map(|(_, v)| v.clone())
                .collect();
            reply(200, json!({ "value": value }))
        }
        ["subscriptions", _, "providers", "microsoft.keyvault", "locations", loc, "deletedvaults", name, "purge"] =>
        {
            if api(req) != "2019-09-01" {
                return unsupported_api(&api(req));
            }
            if !i.deleted_vaults.contains_key(*name) {
                return not_found("Deleted vault", name);
            }
            let path = format!(
                "/subscriptions/{}/providers/Microsoft.KeyVault/locations/{loc}/operationResults/op{}",
                segs[1], i.requests
            );
            accepted(i, base, path, Done::PurgeVault(name.to_string()))
        }
        ["subscriptions", _, "resourcegroups", rg, "providers", provider, ..] => {
            let rg_key = format!("/subscriptions/{sub}/resourcegroups/{rg}");
            if !i.resources.contains_key(&rg_key) {
                return not_found("Resource group", segs[3]);
            }
            match *provider {
                "microsoft.network" => dns(i, req, &segs, &l, &rg_key, base),
                "microsoft.storage" => storage(i, req, &segs, &l, base),
                "microsoft.keyvault" => vault(i, req, &segs, &l),
                _ => no_route(req),
            }
        }
        _ => no_route(req),
    }
}

fn no_route(req: &Req) -> Reply {
    error(
        404,
        "InvalidResourceType",
        &format!("no route for {} {}", req.method, req.path),
    )
}

fn unsupported_api(api: &str) -> Reply {
    error(
        400,
        "InvalidApiVersionParameter",
        &format!("api-version `{api}` is not supported"),
    )
}

fn body(req: &Req) -> Value {
    serde_json::from_slice(&req.body).unwrap_or(Value::Null)
}

fn resource_group(i: &mut Inner, req: &Req, segs: &[&str], base: &str) -> Reply {
    if api(req) != "2021-04-01" {
        return unsupported_api(&api(req));
    }
    let name = segs[3];
    let key = req.path.to_ascii_lowercase();
    let deleting = i
        .operations
        .values()
        .any(|(_, d, _)| matches!(d, Done::DeleteGroup(k) if *k == key));
    match req.method.as_str() {
        "PUT" => {
            if !valid_rg(name) {
                return error(
                    400,
                    "InvalidResourceGroupName",
                    &format!("resource group name `{name}` is invalid"),
                );
            }
            let b = body(req);
            let existed = i.resources.contains_key(&key);
            let v = json!({ "id": req.path, "name": name, "type": "Microsoft.Resources/resourceGroups", "location": b["location"], "tags": b.get("tags").cloned().unwrap_or(json!({})), "properties": { "provisioningState": "Succeeded" } });
            i.resources.insert(key, v.clone());
            reply(if existed { 200 } else { 201 }, v)
        }
        "GET" | "HEAD" => match i.resources.get(&key) {
            Some(v) if req.method == "GET" => {
                let mut v = v.clone();
                if deleting {
                    v["properties"]["provisioningState"] = json!("Deleting");
                }
                reply(200, v)
            }
            Some(_) => reply(204, Value::Null),
            None => not_found("Resource group", name),
        },
        "DELETE" => {
            if !i.resources.contains_key(&key) {
                return not_found("Resource group", name);
            }
            let path = format!(
                "/subscriptions/{}/operationresults/op{}",
                segs[1], i.requests
            );
            accepted(i, base, path, Done::DeleteGroup(key))
        }
        m => error(405, "MethodNotAllowed", m),
    }
}

fn dns(i: &mut Inner, req: &Req, segs: &[&str], l: &[&str], rg_key: &str, base: &str) -> Reply {
    if api(req) != "2018-05-01" {
        return unsupported_api(&api(req));
    }
    let rest = &l[6..];
    if rest.first() != Some(&"dnszones") || rest.len() < 2 {
        return no_route(req);
    }
    let key = req.path.to_ascii_lowercase();
    let zone_key = format!("{rg_key}/providers/microsoft.network/dnszones/{}", rest[1]);
    let is_zone = rest.len() == 2;
    // Record sets of a zone, 100 a page with a nextLink.
    if rest.len() == 3 && rest[2] == "recordsets" && req.method == "GET" {
        if !i.resources.contains_key(&zone_key) {
            return not_found("DNS zone", segs[7]);
        }
        let skip: usize = req
            .query
            .split('&')
            .find_map(|kv| kv.strip_prefix("$skipToken="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let prefix = format!("{zone_key}/");
        let all: Vec<Value> = i
            .resources
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v.clone())
            .collect();
        let page: Vec<Value> = all.iter().skip(skip).take(100).cloned().collect();
        let mut body = json!({ "value": page });
        if skip + 100 < all.len() {
            body["nextLink"] = json!(format!(
                "{base}{}?api-version=2018-05-01&$skipToken={}",
                req.path,
                skip + 100
            ));
        }
        return reply(200, body);
    }
    if !is_zone && !i.resources.contains_key(&zone_key) {
        return error(404, "ParentResourceNotFound", "the DNS zone does not exist");
    }
    // Optimistic concurrency: If-Match (etag) and If-None-Match: * (must not exist).
    let current = i.resources.get(&key).and_then(|v| v["etag"].as_str());
    let stale = req.header("if-match").is_some_and(|m| Some(m) != current)
        || (req.header("if-none-match") == Some("*") && current.is_some());
    if stale && matches!(req.method.as_str(), "PUT" | "DELETE") {
        return error(
            412,
            "PreconditionFailed",
            "The condition specified using HTTP conditional header(s) is not met.",
        );
    }
    match req.method.as_str() {
        "PUT" => {
            let b = body(req);
            let n = i.requests;
            let v = if is_zone {
                json!({ "id": req.path, "name": segs[7], "type": "Microsoft.Network/dnszones", "location": "global", "etag": format!("e{n}"), "tags": b.get("tags").cloned().unwrap_or(json!({})), "properties": { "nameServers": ["ns1-01.azure-dns.com.", "ns2-01.azure-dns.net."], "numberOfRecordSets": 2 } })
            } else {
                let mut props = b["properties"].clone();
                props["fqdn"] = json!(format!("{}.{}.", segs[9], segs[7]).replace("@.", ""));
                json!({ "id": req.path, "name": segs[9], "type": format!("Microsoft.Network/dnszones/{}", segs[8]), "etag": format!("e{n}"), "properties": props })
            };
            let existed = i.resources.contains_key(&key);
            i.resources.insert(key, v.clone());
            reply(if existed { 200 } else { 201 }, v)
        }
        "GET" => match i.resources.get(&key) {
            Some(v) => reply(200, v.clone()),
            None => not_found(
                if is_zone { "DNS zone" } else { "Record set" },
                segs[segs.len() - 1],
            ),
        },
        "DELETE" => {
            let prefix = format!("{key}/");
            let existed = i.resources.remove(&key).is_some();
            i.resources.retain(|k, _| !k.starts_with(&prefix));
            reply(if existed { 200 } else { 204 }, Value::Null)
        }
        m => error(405, "MethodNotAllowed", m),
    }
}

fn storage(i: &mut Inner, req: &Req, segs: &[&str], l: &[&str], base: &str) -> Reply {
    if api(req) != "2023-05-01" {
        return unsupported_api(&api(req));
    }
    let (Some(&"storageaccounts"), Some(name)) = (l.get(6), segs.get(7)) else {
        return no_route(req);
    };
    let account_path = segs[..8].join("/");
    let key = format!("/{}", account_path.to_ascii_lowercase());
    if let Some(&"listkeys") = l.get(8) {
        return match i.resources.get(&key) {
            Some(_) if req.method == "POST" => reply(
                200,
                json!({ "keys": [ { "keyName": "key1", "value": ACCOUNT_KEY, "permissions": "FULL" } ] }),
            ),
            Some(_) => error(405, "MethodNotAllowed", &req.method),
            None => not_found("Storage account", name),
        };
    }
    match req.method.as_str() {
        "PUT" => {
            if !valid_account(name) {
                return error(
                    400,
                    "AccountNameInvalid",
                    &format!("{name} is not a valid storage account name. Storage account name must be between 3 and 24 characters in length and use numbers and lower-case letters only."),
                );
            }
            if taken_elsewhere(i, "storageaccounts", name, &key) {
                return error(
                    409,
                    "StorageAccountAlreadyTaken",
                    &format!("The storage account named {name} is already taken."),
                );
            }
            let b = body(req);
            let sku = b
                .pointer("/sku/name")
                .cloned()
                .unwrap_or(json!("Standard_LRS"));
            let tier = sku
                .as_str()
                .unwrap_or("")
                .split('_')
                .next()
                .unwrap_or("")
                .to_string();
            let existed = i.resources.get(&key).cloned();
            let mut v = json!({
                "id": format!("/{account_path}"), "name": name, "type": "Microsoft.Storage/storageAccounts",
                "location": b["location"], "kind": b["kind"], "sku": { "name": sku, "tier": tier },
                "tags": b.get("tags").cloned().unwrap_or(json!({})),
                "properties": {
                    "provisioningState": "Creating",
                    "minimumTlsVersion": b.pointer("/properties/minimumTlsVersion").cloned().unwrap_or(json!("TLS1_0")),
                    "supportsHttpsTrafficOnly": b.pointer("/properties/supportsHttpsTrafficOnly").cloned().unwrap_or(json!(true)),
                    "primaryEndpoints": { "blob": i.blob_endpoint.replace("{name}", name) },
                },
            });
            match existed {
                // An update of an existing account is synchronous.
                Some(_) => {
                    v["properties"]["provisioningState"] = json!("Succeeded");
                    i.resources.insert(key, v.clone());
                    reply(200, v)
                }
                None => {
                    i.resources.insert(key.clone(), v);
                    let loc = b["location"].as_str().unwrap_or("westeurope").to_string();
                    let path = format!(
                        "/subscriptions/{}/providers/Microsoft.Storage/locations/{loc}/asyncoperations/op{}",
                        segs[1], i.requests
                    );
                    accepted(i, base, path, Done::FinishAccount(key))
                }
            }
        }
        "GET" => match i.resources.get(&key) {
            Some(v) => reply(200, v.clone()),
            None => not_found("Storage account", name),
        },
        "DELETE" => {
            let existed = i.resources.remove(&key).is_some();
            reply(if existed { 200 } else { 204 }, Value::Null)
        }
        m => error(405, "MethodNotAllowed", m),
    }
}

fn vault(i: &mut Inner, req: &Req, segs: &[&str], l: &[&str]) -> Reply {
    if api(req) != "2019-09-01" {
        return unsupported_api(&api(req));
    }
    let (Some(&"vaults"), Some(name), None) = (l.get(6), segs.get(7), segs.get(8)) else {
        return no_route(req);
    };
    let key = req.path.to_ascii_lowercase();
    match req.method.as_str() {
        "PUT" => {
            if !valid_vault(name) {
                return error(
                    400,
                    "VaultNameNotValid",
                    &format!("The vault name '{name}' is invalid. A vault's name must be between 3-24 alphanumeric characters. The name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens."),
                );
            }
            if taken_elsewhere(i, "vaults", name, &key) {
                return error(
                    409,
                    "VaultAlreadyExists",
                    &format!("The vault name '{name}' is already in use."),
                );
            }
            if i.deleted_vaults.contains_key(&name.to_ascii_lowercase()) {
                return error(
                    409,
                    "ConflictError",
                    &format!("A vault with the same name already exists in deleted state. You need to either recover or purge existing key vault '{name}'."),
                );
            }
            let b = body(req);
            let mut props = b["properties"].clone();
            props["vaultUri"] = json!(format!(
                "https://{}.vault.azure.net/",
                name.to_ascii_lowercase()
            ));
            props["provisioningState"] = json!("Succeeded");
            let v = json!({ "id": req.path, "name": name, "type": "Microsoft.KeyVault/vaults", "location": b["location"], "tags": b.get("tags").cloned().unwrap_or(json!({})), "properties": props });
            let existed = i.resources.insert(key, v.clone()).is_some();
            reply(if existed { 200 } else { 201 }, v)
        }
        "GET" => match i.resources.get(&key) {
            Some(v) => reply(200, v.clone()),
            None => not_found("Vault", name),
        },
        "DELETE" => match i.resources.remove(&key) {
            Some(v) => {
                i.deleted_vaults.insert(name.to_ascii_lowercase(), v);
                reply(200, Value::Null)
            }
            None => reply(204, Value::Null),
        },
        m => error(405, "MethodNotAllowed", m),
    }
}

/// Answers DNS queries from the record sets of the zones held.
fn serve_dns(sock: std::net::UdpSocket, inner: &Mutex<Inner>) {
    use hickory_proto::op::{Message, ResponseCode};
    let mut buf = [0u8; 4096];
    while let Ok((n, from)) = sock.recv_from(&mut buf) {
        let Ok(q) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        let mut r = Message::response(q.metadata.id, q.metadata.op_code);
        r.metadata.authoritative = true;
        r.queries = q.queries.clone();
        let i = inner.lock().unwrap();
        for query in &q.queries {
            let name = query
                .name()
                .to_ascii()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            let rtype = query.query_type().to_string().to_ascii_lowercase();
            if let Some(records) = i.stale.get(&(name.clone(), rtype.clone())) {
                r.answers.extend(records.iter().cloned());
                continue;
            }
            let zone = i.resources.keys().find(|k| {
                k.rsplit_once("/dnszones/").is_some_and(|(_, z)| {
                    !z.contains('/') && (name == z || name.ends_with(&format!(".{z}")))
                })
            });
            let Some(zone) = zone else {
                r.metadata.response_code = ResponseCode::Refused;
                continue;
            };
            let z = zone
                .rsplit_once("/dnszones/")
                .map(|(_, z)| z)
                .unwrap_or_default();
            let rel = name
                .strip_suffix(&format!(".{z}"))
                .unwrap_or("@")
                .to_string();
            if let Some(rs) = i.resources.get(&format!("{zone}/{rtype}/{rel}")) {
                r.answers.extend(answers(query.name(), &rs["properties"]));
            }
        }
        drop(i);
        if let Ok(bytes) = r.to_vec() {
            let _ = sock.send_to(&bytes, from);
        }
    }
}

/// DNS records of an ARM record set's properties.
fn answers(name: &hickory_proto::rr::Name, p: &Value) -> Vec<hickory_proto::rr::Record> {
    use hickory_proto::rr::rdata::{A, CNAME, TXT};
    use hickory_proto::rr::{RData, Record};
    let ttl = p["TTL"].as_u64().unwrap_or(3600) as u32;
    let mut data = Vec::new();
    for t in p["TXTRecords"].as_array().into_iter().flatten() {
        let parts: Vec<String> = t["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        data.push(RData::TXT(TXT::new(parts)));
    }
    for a in p["ARecords"].as_array().into_iter().flatten() {
        if let Some(ip) = a["ipv4Address"].as_str().and_then(|s| s.parse().ok()) {
            data.push(RData::A(A(ip)));
        }
    }
    if let Some(c) = p.pointer("/CNAMERecord/cname").and_then(Value::as_str) {
        if let Ok(target) = hickory_proto::rr::Name::from_ascii(format!("{c}.")) {
            data.push(RData::CNAME(CNAME(target)));
        }
    }
    data.into_iter()
        .map(|d| Record::from_rdata(name.clone(), ttl, d))
        .collect()
}
