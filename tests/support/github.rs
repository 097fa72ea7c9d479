//! A GitHub REST API stand-in for tests. It answers the issue and issue-comment paths
//! landlord calls for one repository, keeping issues and comments in memory:
//!
//! | path | methods | answers |
//! |---|---|---|
//! | `/repos/{owner}/{repo}/issues?state=&labels=&per_page=&page=` | GET | 200, newest first, `Link` |
//! | `/repos/{owner}/{repo}/issues` (`title`, `body`, `labels`) | POST | 201 + `Location` |
//! | `/repos/{owner}/{repo}/issues/{number}` | GET | 200 |
//! | `/repos/{owner}/{repo}/issues/{number}` (`title`, `body`, `state`, `state_reason`, `labels`) | PATCH | 200 |
//! | `/repos/{owner}/{repo}/issues/{number}/comments?per_page=&page=` | GET | 200, oldest first, `Link` |
//! | `/repos/{owner}/{repo}/issues/{number}/comments` (`body`) | POST | 201 + `Location` |
//! | `/repos/{owner}/{repo}/issues/comments/{comment_id}` | GET | 200 |
//! | `/repos/{owner}/{repo}/issues/comments/{comment_id}` (`body`) | PATCH | 200 |
//! | `/repos/{owner}/{repo}/issues/comments/{comment_id}` | DELETE | 204 |
//!
//! Behaviour follows the GitHub REST API docs (docs.github.com/en/rest: "Issues",
//! "Issue comments", "Using pagination in the REST API", "Troubleshooting"): lists give
//! `per_page` items (30 by default, at most 100) of page `page` and a `Link` header
//! (`rel="prev"`, `"next"`, `"last"`, `"first"`, absolute URLs on this server) when there
//! are other pages; issue lists take `state` (`open` by default, `closed`, `all`) and
//! `labels` (comma-separated, every one required), newest first. Errors carry GitHub's
//! body, `{"message": …, "documentation_url": …}`: 403 without a `User-Agent`; 401
//! without the token (`Authorization: Bearer …` or `token …`); 404 for another
//! repository, an unknown path, issue or comment; 400 for a body that is not JSON or
//! not an object; 422 `Validation Failed` (with `errors`) for missing or invalid fields.
//!
//! Pull requests are not modelled: comments may be posted on any number, and issue
//! numbers (from 1) are given to issues only. Every comment and issue is by
//! [`LOGIN`]. One request is served per connection (`Connection: close`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};

use super::http::{self, param, params, reply, Reply, Req};

/// The login of the token's user: the author of every comment and issue.
pub const LOGIN: &str = "landlord-bot";

/// Where error bodies point, as GitHub's do.
const DOCS: &str = "https://docs.github.com/rest";

/// Comment ids start here, far from issue numbers, as on GitHub.
const FIRST_COMMENT_ID: u64 = 1_000_000_001;

struct Inner {
    /// `owner/name` of the one repository served.
    repo: String,
    /// The token every request must carry.
    token: String,
    /// `http://127.0.0.1:PORT`, for the URLs in objects and `Link` headers.
    base: String,
    /// Issue objects by number.
    issues: BTreeMap<u64, Value>,
    /// (issue or pull request number, comment object), in creation order.
    comments: Vec<(u64, Value)>,
    next_issue: u64,
    next_comment: u64,
    /// `METHOD /path?query` of every request, in arrival order.
    requests: Vec<String>,
}

/// A running stand-in.
pub struct GitHub {
    endpoint: String,
    inner: Arc<Mutex<Inner>>,
}

fn error(status: u16, message: &str) -> Reply {
    reply(
        status,
        json!({ "message": message, "documentation_url": DOCS }),
    )
}

fn not_found() -> Reply {
    error(404, "Not Found")
}

/// 422 for one field of a `resource` (`missing_field` or `invalid`).
fn validation(resource: &str, field: &str, code: &str) -> Reply {
    reply(
        422,
        json!({
            "message": "Validation Failed",
            "errors": [{ "resource": resource, "field": field, "code": code }],
            "documentation_url": DOCS,
        }),
    )
}

impl GitHub {
    /// Starts the stand-in for repository `repo` (`owner/name`) and `token` on a free loopback port.
    pub fn start(repo: &str, token: &str) -> GitHub {
        let (listener, endpoint) = http::listen();
        let inner = Arc::new(Mutex::new(Inner {
            repo: repo.into(),
            token: token.into(),
            base: endpoint.clone(),
            issues: BTreeMap::new(),
            comments: Vec::new(),
            next_issue: 1,
            next_comment: FIRST_COMMENT_ID,
            requests: Vec::new(),
        }));
        http::serve(listener, inner.clone(), route);
        GitHub { endpoint, inner }
    }

    /// `http://127.0.0.1:PORT`, the API address (`GITHUB_API_URL`).
    pub fn url(&self) -> String {
        self.endpoint.clone()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap())
    }

    /// Adds a comment to pull request `pr` out of band (someone else's, or an earlier run's); its id.
    pub fn seed_comment(&self, pr: u64, body: &str) -> u64 {
        self.with(|i| add_comment(i, pr, body)["id"].as_u64().unwrap_or_default())
    }

    /// The comments of pull request (or issue) `pr` as (id, body), in creation order.
    pub fn comments(&self, pr: u64) -> Vec<(u64, String)> {
        self.with(|i| {
            i.comments
                .iter()
                .filter(|(n, _)| *n == pr)
                .map(|(_, c)| {
                    (
                        c["id"].as_u64().unwrap_or_default(),
                        c["body"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
    }

    /// Opens (or, with `open` false, opens and closes as completed) an issue out of band; its number.
    pub fn seed_issue(&self, title: &str, body: &str, labels: &[&str], open: bool) -> u64 {
        let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        self.with(|i| {
            new_issue(i, title, json!(body), &labels, open)["number"]
                .as_u64()
                .unwrap_or_default()
        })
    }

    /// Every issue object, by number ascending.
    pub fn issues(&self) -> Vec<Value> {
        self.with(|i| i.issues.values().cloned().collect())
    }

    /// `METHOD /path?query` of every request received, in arrival order.
    pub fn requests(&self) -> Vec<String> {
        self.with(|i| i.requests.clone())
    }
}

/// Now, to the second, as GitHub writes times (`2024-05-01T12:00:00Z`).
fn now() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn user() -> Value {
    json!({ "login": LOGIN, "id": 1, "type": "User" })
}

fn label_objects(labels: &[String]) -> Value {
    Value::Array(labels.iter().map(|l| json!({ "name": l })).collect())
}

/// The label names of an issue object.
fn labels_of(issue: &Value) -> Vec<&str> {
    issue["labels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["name"].as_str())
        .collect()
}

/// Records a new issue; its object.
fn new_issue(i: &mut Inner, title: &str, body: Value, labels: &[String], open: bool) -> Value {
    let n = i.next_issue;
    i.next_issue += 1;
    let at = now();
    let v = json!({
        "id": 2_000_000_000 + n,
        "node_id": format!("I_{n}"),
        "url": format!("{}/repos/{}/issues/{n}", i.base, i.repo),
        "html_url": format!("https://github.com/{}/issues/{n}", i.repo),
        "number": n,
        "title": title,
        "body": body,
        "state": if open { "open" } else { "closed" },
        "state_reason": if open { Value::Null } else { json!("completed") },
        "labels": label_objects(labels),
        "user": user(),
        "created_at": at,
        "updated_at": at,
        "closed_at": if open { Value::Null } else { json!(at) },
    });
    i.issues.insert(n, v.clone());
    v
}

/// Records a new comment on issue or pull request `n`; its object.
fn add_comment(i: &mut Inner, n: u64, body: &str) -> Value {
    let id = i.next_comment;
    i.next_comment += 1;
    let at = now();
    let kind = if i.issues.contains_key(&n) {
        "issues"
    } else {
        "pull"
    };
    let v = json!({
        "id": id,
        "node_id": format!("IC_{id}"),
        "url": format!("{}/repos/{}/issues/comments/{id}", i.base, i.repo),
        "html_url": format!("https://github.com/{}/{kind}/{n}#issuecomment-{id}", i.repo),
        "issue_url": format!("{}/repos/{}/issues/{n}", i.base, i.repo),
        "body": body,
        "user": user(),
        "created_at": at,
        "updated_at": at,
        "author_association": "OWNER",
    });
    i.comments.push((n, v.clone()));
    v
}

/// The page of `items` that `per_page` and `page` ask for, with a `Link` header naming
/// the other pages, as GitHub paginates.
fn paginate(items: Vec<Value>, req: &Req, base: &str) -> Reply {
    let ps = params(&req.query);
    let positive = |name: &str| {
        param(&ps, name)
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
    };
    let per_page = positive("per_page").unwrap_or(30).min(100);
    let page = positive("page").unwrap_or(1);
    let last = items.len().div_ceil(per_page).max(1);
    // The same query with another page.
    let link = |p: usize, rel: &str| {
        let kept: String = req
            .query
            .split('&')
            .filter(|kv| !kv.is_empty() && !kv.starts_with("page="))
            .map(|kv| format!("{kv}&"))
            .collect();
        format!("<{base}{}?{kept}page={p}>; rel=\"{rel}\"", req.path)
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(link(page - 1, "prev"));
    }
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
    }
    let shown: Vec<Value> = items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    let mut r = reply(200, Value::Array(shown));
    if !links.is_empty() {
        r.headers.push(("link", links.join(", ")));
    }
    r
}

/// The request body as a JSON object, or GitHub's 400.
fn object(req: &Req) -> Result<Map<String, Value>, Reply> {
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(error(400, "Body should be a JSON object")),
        Err(_) => Err(error(400, "Problems parsing JSON")),
    }
}

/// A required string field.
fn string_field(b: &Map<String, Value>, resource: &str, field: &str) -> Result<String, Reply> {
    match b.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) => Err(validation(resource, field, "missing_field")),
        Some(_) => Err(validation(resource, field, "invalid")),
    }
}

/// An optional `body` field: a string or null.
fn body_field(b: &Map<String, Value>) -> Result<Option<Value>, Reply> {
    match b.get("body") {
        None => Ok(None),
        Some(v @ (Value::Null | Value::String(_))) => Ok(Some(v.clone())),
        Some(_) => Err(validation("Issue", "body", "invalid")),
    }
}

/// An optional `labels` field: names, or objects with a `name`, as GitHub takes them.
fn labels_field(b: &Map<String, Value>) -> Result<Option<Vec<String>>, Reply> {
    let Some(v) = b.get("labels") else {
        return Ok(None);
    };
    let names: Option<Vec<String>> = v.as_array().and_then(|a| {
        a.iter()
            .map(|l| {
                l.as_str()
                    .or_else(|| l["name"].as_str())
                    .map(str::to_string)
            })
            .collect()
    });
    let Some(names) = names else {
        return Err(validation("Issue", "labels", "invalid"));
    };
    // A label named twice is set once.
    let mut once: Vec<String> = Vec::new();
    for n in names {
        if !once.contains(&n) {
            once.push(n);
        }
    }
    Ok(Some(once))
}

fn number(s: &str) -> Option<u64> {
    s.parse().ok()
}

fn route(i: &mut Inner, req: &Req) -> Reply {
    i.requests.push(format!("{} {}", req.method, req.target()));
    if req.header("user-agent").is_none_or(str::is_empty) {
        return error(
            403,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
        );
    }
    let Some(auth) = req.header("authorization") else {
        return error(401, "Requires authentication");
    };
    let authorized = auth.split_once(' ').is_some_and(|(scheme, t)| {
        (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
            && t.trim() == i.token
    });
    if !authorized {
        return error(401, "Bad credentials");
    }
    let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let ["repos", owner, name, "issues", rest @ ..] = segs.as_slice() else {
        return not_found();
    };
    if !format!("{owner}/{name}").eq_ignore_ascii_case(&i.repo) {
        return not_found();
    }
    match (req.method.as_str(), rest) {
        ("GET", []) => list_issues(i, req),
        ("POST", []) => create_issue(i, req),
        (_, ["comments", id]) => match number(id) {
            Some(id) => comment(i, req, id),
            None => not_found(),
        },
        (_, [n, "comments"]) => match number(n) {
            Some(n) => issue_comments(i, req, n),
            None => not_found(),
        },
        (_, [n]) => match number(n) {
            Some(n) => issue(i, req, n),
            None => not_found(),
        },
        _ => not_found(),
    }
}

fn list_issues(i: &Inner, req: &Req) -> Reply {
    let ps = params(&req.query);
    let state = param(&ps, "state").unwrap_or("open");
    if !matches!(state, "open" | "closed" | "all") {
        return validation("Issue", "state", "invalid");
    }
    let wanted: Vec<&str> = param(&ps, "labels")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let items: Vec<Value> = i
        .issues
        .values()
        .rev()
        .filter(|v| state == "all" || v["state"] == state)
        .filter(|v| {
            let has = labels_of(v);
            wanted
                .iter()
                .all(|w| has.iter().any(|l| l.eq_ignore_ascii_case(w)))
        })
        .cloned()
        .collect();
    paginate(items, req, &i.base)
}

fn create_issue(i: &mut Inner, req: &Req) -> Reply {
    let b = match object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let title = match string_field(&b, "Issue", "title") {
        Ok(t) if t.trim().is_empty() => return validation("Issue", "title", "missing_field"),
        Ok(t) => t,
        Err(r) => return r,
    };
    let body = match body_field(&b) {
        Ok(body) => body.unwrap_or(Value::Null),
        Err(r) => return r,
    };
    let labels = match labels_field(&b) {
        Ok(l) => l.unwrap_or_default(),
        Err(r) => return r,
    };
    let v = new_issue(i, &title, body, &labels, true);
    let location = v["url"].as_str().unwrap_or_default().to_string();
    let mut r = reply(201, v);
    r.headers.push(("location", location));
    r
}

fn issue(i: &mut Inner, req: &Req, n: u64) -> Reply {
    if !i.issues.contains_key(&n) {
        return not_found();
    }
    match req.method.as_str() {
        "GET" => reply(200, i.issues[&n].clone()),
        "PATCH" => update_issue(i, req, n),
        _ => not_found(),
    }
}

fn update_issue(i: &mut Inner, req: &Req, n: u64) -> Reply {
    let b = match object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let title = match b.get("title") {
        None => None,
        Some(Value::String(t)) if !t.trim().is_empty() => Some(t.clone()),
        Some(_) => return validation("Issue", "title", "invalid"),
    };
    let body = match body_field(&b) {
        Ok(body) => body,
        Err(r) => return r,
    };
    let state = match b.get("state") {
        None => None,
        Some(Value::String(s)) if matches!(s.as_str(), "open" | "closed") => Some(s.clone()),
        Some(_) => return validation("Issue", "state", "invalid"),
    };
    let state_reason = match b.get("state_reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(s))
            if matches!(s.as_str(), "completed" | "not_planned" | "reopened") =>
        {
            Some(s.clone())
        }
        Some(_) => return validation("Issue", "state_reason", "invalid"),
    };
    let labels = match labels_field(&b) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let at = now();
    let Some(v) = i.issues.get_mut(&n) else {
        return not_found();
    };
    if let Some(t) = title {
        v["title"] = json!(t);
    }
    if let Some(body) = body {
        v["body"] = body;
    }
    if let Some(l) = labels {
        v["labels"] = label_objects(&l);
    }
    let was_open = v["state"] == "open";
    match (state.as_deref(), was_open) {
        (Some("closed"), true) => {
            v["state"] = json!("closed");
            v["closed_at"] = json!(at);
            v["state_reason"] = json!(state_reason.unwrap_or_else(|| "completed".into()));
        }
        (Some("open"), false) => {
            v["state"] = json!("open");
            v["closed_at"] = Value::Null;
            v["state_reason"] = json!("reopened");
        }
        (_, false) if state_reason.is_some() => v["state_reason"] = json!(state_reason),
        _ => {}
    }
    v["updated_at"] = json!(at);
    reply(200, v.clone())
}

fn issue_comments(i: &mut Inner, req: &Req, n: u64) -> Reply {
    match req.method.as_str() {
        "GET" => {
            let items: Vec<Value> = i
                .comments
                .iter()
                .filter(|(on, _)| *on == n)
                .map(|(_, c)| c.clone())
                .collect();
            paginate(items, req, &i.base)
        }
        "POST" => {
            let body = match comment_body(req) {
                Ok(t) => t,
                Err(r) => return r,
            };
            let c = add_comment(i, n, &body);
            let location = c["url"].as_str().unwrap_or_default().to_string();
            let mut r = reply(201, c);
            r.headers.push(("location", location));
            r
        }
        _ => not_found(),
    }
}

/// The `body` a comment request must carry.
fn comment_body(req: &Req) -> Result<String, Reply> {
    string_field(&object(req)?, "IssueComment", "body")
}

fn comment(i: &mut Inner, req: &Req, id: u64) -> Reply {
    let Some(at) = i.comments.iter().position(|(_, c)| c["id"] == id) else {
        return not_found();
    };
    match req.method.as_str() {
        "GET" => reply(200, i.comments[at].1.clone()),
        "PATCH" => {
            let body = match comment_body(req) {
                Ok(t) => t,
                Err(r) => return r,
            };
            let c = &mut i.comments[at].1;
            c["body"] = json!(body);
            c["updated_at"] = json!(now());
            reply(200, c.clone())
        }
        "DELETE" => {
            i.comments.remove(at);
            reply(204, Value::Null)
        }
        _ => not_found(),
    }
}
