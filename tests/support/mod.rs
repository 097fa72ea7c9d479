//! Test workspaces and a runner for the `landlord` binary.

#![allow(dead_code)]

pub mod arm;
pub mod azurite;
pub mod bind;
pub mod faulty;
pub mod github;
pub mod gitlab;
pub mod http;
pub mod moto;
pub mod pebble;
pub mod postgres;
pub mod webhook;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Where scripts/install-test-deps puts the servers and tools the suites run:
/// `$LANDLORD_TOOLS`, else `~/.cache/landlord/tools`.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("LANDLORD_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/landlord/tools")
        })
}

/// Changes the applied quick start out of band: globex's nginx burst limit is edited and
/// initech's certificate file deleted.
pub fn drift_globex_and_initech(ws: &Ws) {
    ws.edit("out/globex/nginx.conf", "burst=100", "burst=9999");
    std::fs::remove_file(ws.join("out/initech/tls.crt")).unwrap();
}

/// The quick start with `n` more tenants on the basic tier (`t000`, `t001`, ...).
pub fn fleet(n: usize) -> Ws {
    let ws = Ws::example("quickstart");
    for i in 0..n {
        let id = format!("t{i:03}");
        ws.write(&format!("tenants/{id}.yaml"), &tenant_yaml(&id, "basic"));
    }
    ws
}

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_landlord"))
}

/// A fixed master key so state written by different runs can be compared.
pub const MASTER_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// The result of one run.
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// The result of a finished command.
    pub fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into(),
            stderr: String::from_utf8_lossy(&o.stderr).into(),
        }
    }

    /// Both streams, for messages.
    pub fn all(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// A copy of an example workspace in a temporary directory.
pub struct Ws {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let name = e.file_name();
        let n = name.to_string_lossy();
        if n == "out" || n == "state" || n == ".landlord" {
            continue;
        }
        let (src, dst) = (e.path(), to.join(&name));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

impl Ws {
    /// A fresh copy of `examples/<name>`.
    pub fn example(name: &str) -> Ws {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("examples")
                .join(name),
            dir.path(),
        );
        Ws { dir, env: vec![] }
    }

    /// An empty workspace, for tests that write every file themselves.
    pub fn empty() -> Ws {
        Ws {
            dir: tempfile::tempdir().unwrap(),
            env: vec![],
        }
    }

    /// The same workspace with extra environment for every run.
    pub fn with_env(mut self, env: Vec<(String, String)>) -> Ws {
        self.env.extend(env);
        self
    }

    /// The workspace directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the workspace.
    pub fn join(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Reads a workspace file.
    pub fn read(&self, p: &str) -> String {
        std::fs::read_to_string(self.join(p)).unwrap_or_else(|e| panic!("cannot read {p}: {e}"))
    }

    /// Writes a workspace file (creating directories).
    pub fn write(&self, p: &str, text: &str) {
        let path = self.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Replaces text in a workspace file; the text must be there.
    pub fn edit(&self, p: &str, from: &str, to: &str) {
        let t = self.read(p);
        assert!(t.contains(from), "{p} does not contain {from:?}");
        self.write(p, &t.replacen(from, to, 1));
    }

    /// A command for `landlord -C <ws> args...`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("-C")
            .arg(self.path())
            .args(args)
            .env("LANDLORD_MASTER_KEY", MASTER_KEY)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Runs landlord to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().unwrap())
    }

    /// Runs landlord with some environment variables set otherwise for this run only.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.cmd(args);
        c.envs(env.iter().copied());
        Run::from(c.output().unwrap())
    }

    /// Runs landlord and insists on an exit code.
    pub fn ok(&self, args: &[&str], code: i32) -> Run {
        let r = self.run(args);
        assert_eq!(
            r.code,
            code,
            "landlord {args:?} exited {}, expected {code}\n{}",
            r.code,
            r.all()
        );
        r
    }

    /// `state export`, as text.
    pub fn export(&self) -> String {
        self.ok(&["state", "export"], 0).stdout
    }

    /// Serial, resources and pending intents of `state export` (not the run history):
    /// what must stay the same when a run changes nothing.
    pub fn recorded(&self) -> (serde_json::Value, serde_json::Value, serde_json::Value) {
        let v: serde_json::Value = serde_json::from_str(&self.export()).unwrap();
        (
            v["serial"].clone(),
            v["resources"].clone(),
            v["intents"].clone(),
        )
    }

    /// Every file under `out/`, relative to the workspace.
    pub fn out_files(&self) -> Vec<String> {
        let mut v = Vec::new();
        walk(&self.join("out"), &mut v);
        let mut v: Vec<String> = v
            .iter()
            .map(|p| {
                p.strip_prefix(self.path())
                    .unwrap()
                    .to_string_lossy()
                    .to_string()
            })
            .collect();
        v.sort();
        v
    }
}

/// Every file below `p`.
pub fn walk(p: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(p) else { return };
    for e in rd.flatten() {
        if e.path().is_dir() {
            walk(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

/// The AWS example with `n` tenants of one Route 53 record each (`t0000`, `t0001`, ...)
/// instead of its own, running with `env`.
pub fn records_workspace(env: Vec<(String, String)>, n: usize) -> Ws {
    let ws = Ws::example("aws").with_env(env);
    for f in ["acme", "globex", "initech"] {
        std::fs::remove_file(ws.join(&format!("tenants/{f}.yaml"))).unwrap();
    }
    ws.write(
        "plans/records.yaml",
        "modules:\n  - use: aws/subdomain-record\n",
    );
    for i in 0..n {
        ws.write(
            &format!("tenants/t{i:04}.yaml"),
            &format!("id: t{i:04}\nplan: records\ndomain: {{ kind: subdomain, name: t{i:04} }}\n"),
        );
    }
    ws
}

/// A tenant file for generated workspaces.
pub fn tenant_yaml(id: &str, plan: &str) -> String {
    format!("id: {id}\nplan: {plan}\nstatus: active\nregion: eu-west-1\ndomain: {{ kind: subdomain, name: {id} }}\n")
}

/// Runs `landlord apply` `runs` times, killing each run (SIGKILL) after it printed
/// `thresholds[i]` progress lines (0: after a short sleep); returns how many runs were
/// still working when killed.
pub fn kill_applies(
    ws: &Ws,
    args: &[&str],
    runs: usize,
    thresholds: &[usize],
    sleep_ms: (u64, u64),
) -> usize {
    use std::io::{BufRead, BufReader};
    let mut kills = 0;
    for i in 0..runs {
        let mut child = ws
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let target = thresholds[i % thresholds.len()];
        if target == 0 {
            std::thread::sleep(std::time::Duration::from_millis(
                sleep_ms.0 + sleep_ms.1 * i as u64,
            ));
        } else {
            let mut seen = 0;
            for line in BufReader::new(child.stdout.take().unwrap()).lines() {
                let Ok(line) = line else { break };
                if line.ends_with("s]") {
                    seen += 1;
                    if seen >= target {
                        break;
                    }
                }
            }
        }
        if child.try_wait().unwrap().is_none() {
            kills += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    kills
}

/// How many calls of `op` a `--json` report (plan or apply) counted.
pub fn api_calls(json: &serde_json::Value, op: &str) -> u64 {
    json["api_calls"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .filter(|c| c["operation"] == op)
                .filter_map(|c| c["count"].as_u64())
                .sum()
        })
        .unwrap_or(0)
}

/// Writes module `test/slow`: one `time_sleep` whose create takes `duration`.
pub fn write_slow_module(ws: &Ws, duration: &str) {
    ws.write(
        "modules/test/slow/module.yaml",
        "description: waits on create\n",
    );
    ws.write(
        "modules/test/slow/slow.yaml.tera",
        &format!(
            "- type: time_sleep\n  name: pause\n  properties: {{ create_duration: {duration} }}\n"
        ),
    );
}

/// Adds module `test/slow` (see `write_slow_module`) to the quick start's basic tier.
pub fn add_slow_module(ws: &Ws, duration: &str) {
    write_slow_module(ws, duration);
    ws.edit(
        "plans/basic.yaml",
        "modules:\n",
        "modules:\n  - use: test/slow\n",
    );
}

/// `plan --json` plus `extra` (expected to exit 0), parsed.
pub fn plan_json(ws: &Ws, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["plan", "--json"];
    args.extend(extra);
    serde_json::from_str(&ws.ok(&args, 0).stdout).unwrap()
}

/// Every file of the state directory but the lock file (which records the current
/// holder), by path, with a digest of its bytes: what must not change when a run
/// changes nothing.
pub fn state_files(ws: &Ws) -> std::collections::BTreeMap<String, String> {
    use sha2::Digest;
    let mut files = Vec::new();
    walk(&ws.join("state"), &mut files);
    files
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "lock"))
        .map(|p| {
            let digest = hex::encode(sha2::Sha256::digest(std::fs::read(&p).unwrap_or_default()));
            (p.display().to_string(), digest)
        })
        .collect()
}

/// Adds a workspace module `test/broken` with this template to the quick start's basic
/// tier (tenant initech).
pub fn broken_module(ws: &Ws, template: &str) {
    ws.write(
        "modules/test/broken/module.yaml",
        "description: a module under test\n",
    );
    ws.write("modules/test/broken/broken.yaml.tera", template);
    ws.edit(
        "plans/basic.yaml",
        "modules:\n",
        "modules:\n  - use: test/broken\n",
    );
}

/// Starts two `apply --lock-timeout 0s` at once; one must succeed and one be refused.
/// Returns the winner's pid and the loser's stderr (`context` names the case in panics).
pub fn race_two_applies(ws: &Ws, context: &str) -> (u32, String) {
    let spawn = || {
        ws.cmd(&["apply", "--auto-approve", "--lock-timeout", "0s"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let pids = (a.id(), b.id());
    let (oa, ob) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let (winner, loser) = match (oa.status.code(), ob.status.code()) {
        (Some(0), Some(1)) => (pids.0, ob),
        (Some(1), Some(0)) => (pids.1, oa),
        other => panic!(
            "{context}: expected one success and one refusal, got {other:?}\n{}\n{}",
            String::from_utf8_lossy(&oa.stderr),
            String::from_utf8_lossy(&ob.stderr)
        ),
    };
    (winner, String::from_utf8_lossy(&loser.stderr).into_owned())
}

/// The `local_file` records in state and the files on disk agree one to one.
pub fn files_match_records(ws: &Ws) {
    let list = ws.ok(&["state", "list"], 0).stdout;
    let recorded = list.lines().filter(|l| l.contains("/local_file.")).count();
    assert_eq!(
        ws.out_files().len(),
        recorded,
        "every file on disk is recorded once\n{list}"
    );
}

/// The quick start's generated password of acme, as `output --show-sensitive` prints it.
pub fn acme_password(ws: &Ws) -> String {
    ws.ok(
        &[
            "output",
            "acme/random_password.db",
            "result",
            "--show-sensitive",
        ],
        0,
    )
    .stdout
}

/// Starts `landlord args` in `ws` without waiting.
pub fn spawn(ws: &Ws, args: &[&str]) -> std::process::Child {
    ws.cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a spawned run: its exit code and both streams.
pub fn finish(child: std::process::Child) -> (i32, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Four runners started at once, each `apply --shard K/4` on `ws` (quick start tiers,
/// 201 scopes with `_shared`): all succeed, every tenant is applied exactly once, the audit
/// chains verify, and each run's history row lists only its shard's tenants.
pub fn four_sharded_runners(ws: &Ws) {
    let runners: Vec<_> = (1..=4)
        .map(|k| {
            spawn(
                &ws,
                &["apply", "--auto-approve", "--shard", &format!("{k}/4")],
            )
        })
        .collect();
    for (k, r) in runners.into_iter().enumerate() {
        let (code, out) = finish(r);
        assert_eq!(code, 0, "runner {}: {out}", k + 1);
    }
    ws.ok(&["audit", "verify"], 0);
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    files_match_records(ws);

    let ex = serde_json::from_str::<serde_json::Value>(&ws.export()).unwrap();
    // Every tenant was applied exactly once: one create per record, nothing else.
    let events = ex["audit"].as_array().unwrap();
    assert!(
        events.iter().all(|e| e["action"] == "create"),
        "only creates"
    );
    assert_eq!(events.len(), ex["resources"].as_array().unwrap().len());
    // Each run's history row lists its shard's tenants and no other.
    let shard_of = |k: usize| -> Vec<String> {
        let shard = format!("{k}/4");
        let json = ws
            .ok(&["tenants", "list", "--shard", &shard, "--json"], 0)
            .stdout;
        let mut ids: Vec<String> = serde_json::from_str::<serde_json::Value>(&json)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect();
        if k == 1 {
            ids.push("_shared".into());
        }
        ids.sort();
        ids
    };
    let mut expected: Vec<Vec<String>> = (1..=4).map(shard_of).collect();
    let mut listed: Vec<Vec<String>> = ex["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let mut t: Vec<String> = row["tenants"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect();
            t.sort();
            t
        })
        .collect();
    expected.sort();
    listed.sort();
    assert_eq!(
        listed, expected,
        "one history row per runner, listing its shard"
    );
    let all: std::collections::BTreeSet<&String> = expected.iter().flatten().collect();
    assert_eq!(all.len(), 201, "200 tenants and _shared");
    assert_eq!(
        expected.iter().map(Vec::len).sum::<usize>(),
        201,
        "once each"
    );
}

/// Two runs on overlapping tenants of the quick start in `ws` (state shared): a run on
/// another tenant does not wait; one on a held tenant waits, then names the holder and the
/// tenant (no unlock advice: the holder is alive); with time enough it runs after and
/// finds nothing to do; every record matches a file.
pub fn overlapping_runners(ws: &Ws) {
    use std::time::{Duration, Instant};
    ws.ok(&["apply", "--auto-approve"], 0);
    write_slow_module(ws, "3s");
    // acme and globex wait three seconds each; initech (basic) does not.
    for tier in ["professional", "enterprise"] {
        ws.edit(
            &format!("plans/{tier}.yaml"),
            "modules:\n",
            "modules:\n  - use: test/slow\n",
        );
    }
    // A holds acme and globex for about three seconds.
    let a = spawn(
        ws,
        &[
            "apply",
            "--auto-approve",
            "--tenant",
            "acme",
            "--tenant",
            "globex",
        ],
    );
    std::thread::sleep(Duration::from_millis(900));
    // A run on another tenant does not wait.
    let start = Instant::now();
    ws.ok(
        &[
            "apply",
            "--auto-approve",
            "--tenant",
            "initech",
            "--lock-timeout",
            "1s",
        ],
        0,
    );
    let disjoint = start.elapsed();
    // One that needs globex waits, then names the holder.
    let r = ws.ok(
        &[
            "apply",
            "--auto-approve",
            "--tenant",
            "globex",
            "--lock-timeout",
            "500ms",
        ],
        1,
    );
    assert!(
        r.stderr.contains("state is locked by")
            && r.stderr.contains("`landlord apply`")
            && r.stderr.contains("on tenant `globex`"),
        "{}",
        r.all()
    );
    assert!(
        !r.stderr.contains("state unlock"),
        "no stale lock to break: {}",
        r.all()
    );
    // With time enough it gets the lock once A is done, and finds nothing left to do.
    let b = spawn(
        ws,
        &[
            "apply",
            "--auto-approve",
            "--tenant",
            "globex",
            "--lock-timeout",
            "60s",
        ],
    );
    let (code, out) = finish(a);
    assert_eq!(code, 0, "{out}");
    let (code, out) = finish(b);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("No changes"), "{out}");
    assert!(
        disjoint < Duration::from_secs(3),
        "a run on another tenant waited {disjoint:?}"
    );
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    ws.ok(&["audit", "verify"], 0);
    files_match_records(ws);
}

/// Starts `apply --parallelism 2` and waits until it has reported `lines` progress lines.
pub fn apply_until(ws: &Ws, lines: usize) -> (std::process::Child, Vec<String>) {
    let mut child = ws
        .cmd(&["apply", "--auto-approve", "--parallelism", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = vec![];
    let mut line = String::new();
    while seen.iter().filter(|l: &&String| l.ends_with("s]")).count() < lines {
        line.clear();
        if std::io::BufRead::read_line(&mut out, &mut line).unwrap() == 0 {
            break;
        }
        seen.push(line.trim_end().to_string());
    }
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    (child, seen)
}
