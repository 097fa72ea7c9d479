//! A GitLab REST API (v4) stand-in for tests. It answers the merge-request note paths
//! landlord calls for one project, keeping notes in memory:
//!
//! | path (under `/api/v4`) | methods | answers |
//! |---|---|---|
//! | `/projects/{id}/merge_requests/{iid}/notes?sort=&order_by=&per_page=&page=` | GET | 200, newest first, `X-*` + `Link` |
//! | `/projects/{id}/merge_requests/{iid}/notes` (`body`) | POST | 201 |
//! | `/projects/{id}/merge_requests/{iid}/notes/{note_id}` | GET | 200 |
//! | `/projects/{id}/merge_requests/{iid}/notes/{note_id}` (`body`) | PUT | 200 |
//! | `/projects/{id}/merge_requests/{iid}/notes/{note_id}` | DELETE | 204 |
//!
//! Behaviour follows the GitLab REST API docs (docs.gitlab.com/ee/api: "Notes API",
//! "REST API" pagination and status codes): `{id}` is the project's numeric id or its
//! URL-encoded path (`group%2Fproject`, compared without regard to case). Lists take
//! `sort` (`desc` by default, or `asc`) and `order_by` (`created_at` by default, or
//! `updated_at`), ties broken by note id; they give `per_page` notes (20 by default, at
//! most 100) of page `page` with the headers `X-Page`, `X-Per-Page`, `X-Total`,
//! `X-Total-Pages`, `X-Next-Page` and `X-Prev-Page` (empty when there is no such page)
//! and a `Link` header (`rel="prev"`, `"next"`, `"first"`, `"last"`: absolute URLs on
//! this server, the request's query with only `page` changed). `body` is read from a
//! JSON object, a form (`application/x-www-form-urlencoded`) or the query string.
//!
//! Errors carry GitLab's bodies: 401 `{"message":"401 Unauthorized"}` without the token
//! (`PRIVATE-TOKEN: …` or `Authorization: Bearer …`); 404 `{"message":"404 Project Not
//! Found"}` for another project; 404 `{"message":"404 Not found"}` for a note not on that
//! merge request; 404 `{"error":"404 Not Found"}` for any other path or method; 400
//! `{"message":"400 Bad request - Note {:note=>[\"can't be blank\"]}"}` for a POST whose
//! `body` is missing or blank (GitLab itself answers a missing one with
//! `{"error":"body is missing"}`) and `… is too long (maximum is 1000000 characters)` for
//! a longer one; a PUT without `body` changes nothing, one with a blank `body` gets 400
//! `{"error":"body is empty"}`; 400 `{"error":…}` for a `sort` or `order_by` GitLab does
//! not take, a `body` that is not a string, or a request body that is not JSON.
//!
//! Merge requests are not modelled: notes may be posted on any iid. Note ids are global
//! across merge requests and start at 1. Every note is by [`USERNAME`] and not a system
//! note. One request is served per connection (`Connection: close`).

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::http::{self, param, params, reply, Reply, Req};

/// The username of the token's user: the author of every note.
pub const USERNAME: &str = "landlord-bot";

/// Notes per page when `per_page` is not given.
const DEFAULT_PER_PAGE: usize = 20;

/// The largest `per_page` GitLab honours.
const MAX_PER_PAGE: usize = 100;

/// The longest note GitLab accepts, in characters.
const MAX_NOTE_CHARS: usize = 1_000_000;

/// A merge request's global id (`noteable_id`) is its iid plus this.
const MR_ID_OFFSET: u64 = 100_000;

/// One note on a merge request.
struct Note {
    id: u64,
    /// The merge request's iid.
    mr: u64,
    body: String,
    /// `2024-05-01T12:00:00.123Z`, fixed width, so text order is time order.
    created_at: String,
    updated_at: String,
}

struct Inner {
    /// The numeric id of the one project served.
    project_id: u64,
    /// Its `group/project` path.
    project_path: String,
    /// The token every request must carry.
    token: String,
    /// `http://127.0.0.1:PORT`, for the URLs in objects and `Link` headers.
    base: String,
    /// Every note, in creation order.
    notes: Vec<Note>,
    next_note: u64,
    /// `METHOD /path?query` of every request, in arrival order.
    requests: Vec<String>,
}

/// A running stand-in.
pub struct GitLab {
    endpoint: String,
    inner: Arc<Mutex<Inner>>,
}

fn message(status: u16, text: &str) -> Reply {
    reply(status, json!({ "message": text }))
}

/// GitLab's `{"error": …}` error body (unknown routes, parameter validation).
fn error(status: u16, text: &str) -> Reply {
    reply(status, json!({ "error": text }))
}

/// No such route.
fn route_not_found() -> Reply {
    error(404, "404 Not Found")
}

/// No such note on the merge request.
fn note_not_found() -> Reply {
    message(404, "404 Not found")
}

impl GitLab {
    /// Starts the stand-in for project `project_id` (also reachable as `project_path`, `group/project`) and `token` on a free loopback port.
    pub fn start(project_id: u64, project_path: &str, token: &str) -> GitLab {
        let (listener, endpoint) = http::listen();
        let inner = Arc::new(Mutex::new(Inner {
            project_id,
            project_path: project_path.into(),
            token: token.into(),
            base: endpoint.clone(),
            notes: Vec::new(),
            next_note: 1,
            requests: Vec::new(),
        }));
        http::serve(listener, inner.clone(), route);
        GitLab { endpoint, inner }
    }

    /// `http://127.0.0.1:PORT/api/v4`, the API address (what `CI_API_V4_URL` holds).
    pub fn api_url(&self) -> String {
        format!("{}/api/v4", self.endpoint)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap())
    }

    /// Adds a note to merge request `mr` out of band (someone else's, or an earlier run's); its id.
    pub fn seed_note(&self, mr: u64, body: &str) -> u64 {
        self.with(|i| add_note(i, mr, body))
    }

    /// The notes of merge request `mr` as (id, body), in creation order.
    pub fn notes(&self, mr: u64) -> Vec<(u64, String)> {
        self.with(|i| {
            i.notes
                .iter()
                .filter(|n| n.mr == mr)
                .map(|n| (n.id, n.body.clone()))
                .collect()
        })
    }

    /// `METHOD /path?query` of every request received, in arrival order.
    pub fn requests(&self) -> Vec<String> {
        self.with(|i| i.requests.clone())
    }
}

/// Now, to the millisecond, as GitLab writes times (`2024-05-01T12:00:00.123Z`).
fn now() -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}

/// Records a new note on merge request `mr`; its id.
fn add_note(i: &mut Inner, mr: u64, body: &str) -> u64 {
    let id = i.next_note;
    i.next_note += 1;
    let at = now();
    i.notes.push(Note {
        id,
        mr,
        body: body.to_string(),
        created_at: at.clone(),
        updated_at: at,
    });
    id
}

/// A note object, as the notes API gives it.
fn note_json(i: &Inner, n: &Note) -> Value {
    json!({
        "id": n.id,
        "type": null,
        "body": n.body,
        "attachment": null,
        "author": {
            "id": 1,
            "username": USERNAME,
            "name": USERNAME,
            "state": "active",
            "web_url": format!("{}/{USERNAME}", i.base),
        },
        "created_at": n.created_at,
        "updated_at": n.updated_at,
        "system": false,
        "noteable_id": MR_ID_OFFSET + n.mr,
        "noteable_type": "MergeRequest",
        "project_id": i.project_id,
        "resolvable": false,
        "confidential": false,
        "internal": false,
        "noteable_iid": n.mr,
    })
}

/// Where note `id` of merge request `mr` is in `i.notes`.
fn find_note(i: &Inner, mr: u64, id: u64) -> Option<usize> {
    i.notes.iter().position(|n| n.mr == mr && n.id == id)
}

/// `query` with `page` set to `page` where it stood (or appended), the rest unchanged.
fn with_page(query: &str, page: usize) -> String {
    let mut replaced = false;
    let mut kept: Vec<String> = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .filter_map(|kv| {
            if kv.split_once('=').map_or(kv, |(k, _)| k) != "page" {
                Some(kv.to_string())
            } else if replaced {
                None
            } else {
                replaced = true;
                Some(format!("page={page}"))
            }
        })
        .collect();
    if !replaced {
        kept.push(format!("page={page}"));
    }
    kept.join("&")
}

/// The page of `items` that `per_page` and `page` ask for, with GitLab's pagination
/// headers (`X-Page`, …, and a `Link` naming the other pages).
fn paginate(items: Vec<Value>, req: &Req, base: &str) -> Reply {
    let ps = params(&req.query);
    let positive = |name: &str| {
        param(&ps, name)
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
    };
    let per_page = positive("per_page")
        .unwrap_or(DEFAULT_PER_PAGE)
        .min(MAX_PER_PAGE);
    let page = positive("page").unwrap_or(1);
    let total = items.len();
    // GitLab reports at least one page, even for no items.
    let pages = total.div_ceil(per_page).max(1);
    // Past the last page there is neither a next nor a previous page.
    let next = (page < pages).then(|| page + 1);
    let prev = (page > 1 && page <= pages).then(|| page - 1);
    let link = |p: usize, rel: &str| {
        format!(
            "<{base}{}?{}>; rel=\"{rel}\"",
            req.path,
            with_page(&req.query, p)
        )
    };
    let mut links = Vec::new();
    if let Some(p) = prev {
        links.push(link(p, "prev"));
    }
    if let Some(p) = next {
        links.push(link(p, "next"));
    }
    links.push(link(1, "first"));
    links.push(link(pages, "last"));
    let shown: Vec<Value> = items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    let or_empty = |p: Option<usize>| p.map(|p| p.to_string()).unwrap_or_default();
    let mut r = reply(200, Value::Array(shown));
    r.headers.extend([
        ("X-Page", page.to_string()),
        ("X-Per-Page", per_page.to_string()),
        ("X-Total", total.to_string()),
        ("X-Total-Pages", pages.to_string()),
        ("X-Next-Page", or_empty(next)),
        ("X-Prev-Page", or_empty(prev)),
        ("Link", links.join(", ")),
    ]);
    r
}

/// The `body` parameter, if given: from the request body (a JSON object or a form), else
/// from the query string, as GitLab reads parameters.
fn body_param(req: &Req) -> Result<Option<String>, Reply> {
    let form = req.header("content-type").is_some_and(|t| {
        t.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    let sent = if req.body.iter().all(u8::is_ascii_whitespace) {
        None
    } else if form {
        let ps = params(&String::from_utf8_lossy(&req.body));
        param(&ps, "body").map(str::to_string)
    } else {
        match serde_json::from_slice::<Value>(&req.body) {
            Ok(Value::Object(m)) => match m.get("body") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(error(400, "body is invalid")),
            },
            Ok(_) | Err(_) => return Err(error(400, "The request body is not a JSON object")),
        }
    };
    Ok(sent.or_else(|| param(&params(&req.query), "body").map(str::to_string)))
}

/// What is wrong with a note's text, in GitLab's words (`can't be blank`, `is too long …`).
fn note_problem(body: &str) -> Option<String> {
    if body.trim().is_empty() {
        Some("can't be blank".to_string())
    } else if body.chars().count() > MAX_NOTE_CHARS {
        Some(format!(
            "is too long (maximum is {MAX_NOTE_CHARS} characters)"
        ))
    } else {
        None
    }
}

fn number(s: &str) -> Option<u64> {
    s.parse().ok()
}

/// What a request asks of the notes of one merge request.
enum Op {
    List,
    Create,
    Show(u64),
    Update(u64),
    Delete(u64),
}

fn route(i: &mut Inner, req: &Req) -> Reply {
    i.requests.push(format!("{} {}", req.method, req.target()));
    let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let ["api", "v4", "projects", project, "merge_requests", mr, "notes", rest @ ..] =
        segs.as_slice()
    else {
        return route_not_found();
    };
    let Some(mr) = number(mr) else {
        return route_not_found();
    };
    let op = match (req.method.as_str(), rest) {
        ("GET", []) => Op::List,
        ("POST", []) => Op::Create,
        (method, [id]) => match (method, number(id)) {
            ("GET", Some(id)) => Op::Show(id),
            ("PUT", Some(id)) => Op::Update(id),
            ("DELETE", Some(id)) => Op::Delete(id),
            _ => return route_not_found(),
        },
        _ => return route_not_found(),
    };
    let private_token = req
        .header("private-token")
        .is_some_and(|t| t.trim() == i.token);
    let bearer = req
        .header("authorization")
        .and_then(|a| a.split_once(' '))
        .is_some_and(|(scheme, t)| scheme.eq_ignore_ascii_case("bearer") && t.trim() == i.token);
    if !(private_token || bearer) {
        return message(401, "401 Unauthorized");
    }
    let project = http::decode(project, false);
    let same_project =
        number(&project) == Some(i.project_id) || project.eq_ignore_ascii_case(&i.project_path);
    if !same_project {
        return message(404, "404 Project Not Found");
    }
    match op {
        Op::List => list_notes(i, req, mr),
        Op::Create => create_note(i, req, mr),
        Op::Show(id) => match find_note(i, mr, id) {
            Some(at) => reply(200, note_json(i, &i.notes[at])),
            None => note_not_found(),
        },
        Op::Update(id) => update_note(i, req, mr, id),
        Op::Delete(id) => match find_note(i, mr, id) {
            Some(at) => {
                i.notes.remove(at);
                reply(204, Value::Null)
            }
            None => note_not_found(),
        },
    }
}

/// The sort key of a note: the `order_by` time, then the id.
fn order_key(n: &Note, by_updated: bool) -> (&str, u64) {
    let at = if by_updated {
        &n.updated_at
    } else {
        &n.created_at
    };
    (at.as_str(), n.id)
}

fn list_notes(i: &Inner, req: &Req, mr: u64) -> Reply {
    let ps = params(&req.query);
    let desc = match param(&ps, "sort") {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return error(400, "sort does not have a valid value"),
    };
    let by_updated = match param(&ps, "order_by") {
        None | Some("created_at") => false,
        Some("updated_at") => true,
        Some(_) => return error(400, "order_by does not have a valid value"),
    };
    let mut notes: Vec<&Note> = i.notes.iter().filter(|n| n.mr == mr).collect();
    notes.sort_by(|a, b| order_key(a, by_updated).cmp(&order_key(b, by_updated)));
    if desc {
        notes.reverse();
    }
    let items: Vec<Value> = notes.into_iter().map(|n| note_json(i, n)).collect();
    paginate(items, req, &i.base)
}

fn create_note(i: &mut Inner, req: &Req, mr: u64) -> Reply {
    let body = match body_param(req) {
        Ok(body) => body.unwrap_or_default(),
        Err(r) => return r,
    };
    if let Some(problem) = note_problem(&body) {
        return message(
            400,
            &format!("400 Bad request - Note {{:note=>[\"{problem}\"]}}"),
        );
    }
    let id = add_note(i, mr, &body);
    match find_note(i, mr, id) {
        Some(at) => reply(201, note_json(i, &i.notes[at])),
        None => note_not_found(),
    }
}

fn update_note(i: &mut Inner, req: &Req, mr: u64, id: u64) -> Reply {
    let body = match body_param(req) {
        Ok(body) => body,
        Err(r) => return r,
    };
    if body.as_deref().is_some_and(|b| b.trim().is_empty()) {
        return error(400, "body is empty");
    }
    let Some(at) = find_note(i, mr, id) else {
        return note_not_found();
    };
    if let Some(body) = body {
        if let Some(problem) = note_problem(&body) {
            return message(
                400,
                &format!("400 Bad request - Failed to save note {{:note=>[\"{problem}\"]}}"),
            );
        }
        let n = &mut i.notes[at];
        if n.body != body {
            n.body = body;
            n.updated_at = now();
        }
    }
    reply(200, note_json(i, &i.notes[at]))
}
