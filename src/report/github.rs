//! GitHub as the place of review: the plan as one pull-request comment (one per part),
//! updated in place on every push; one issue per drifted tenant, updated while it
//! drifts and closed once it is clean. Our comments and issues are found again by a
//! hidden marker; everything else is left alone. Token, repository and API address come
//! from the environment GitHub Actions sets.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{json, Value};

use super::comments::Thread;
use super::{http, ReportError};
use crate::plan::drift::{self, Report};

/// Label of drift issues unless told otherwise.
pub const DRIFT_LABEL: &str = "landlord-drift";

/// Characters GitHub accepts in a comment or issue body.
const BODY_LIMIT: usize = crate::plan::show::comment::GITHUB_COMMENT_LIMIT;

/// A GitHub repository, through the REST API.
pub struct GitHub {
    api: http::Api,
    base: String,
    repo: String,
}

impl GitHub {
    /// The repository `repo` (or `GITHUB_REPOSITORY`) at `GITHUB_API_URL` (or
    /// api.github.com), with the token of `GITHUB_TOKEN` (or `GH_TOKEN`).
    pub fn from_env(repo: Option<&str>) -> Result<GitHub, ReportError> {
        let token = super::env("GITHUB_TOKEN").or_else(|| super::env("GH_TOKEN")).ok_or_else(|| {
            ReportError::Setting(
                "no GitHub token: set GITHUB_TOKEN (in a workflow: `env: GITHUB_TOKEN: ${{ github.token }}`)".into(),
            )
        })?;
        let repo = repo
            .map(str::to_string)
            .or_else(|| super::env("GITHUB_REPOSITORY"))
            .ok_or_else(|| {
                ReportError::Setting(
                    "no repository: pass --repo OWNER/NAME or set GITHUB_REPOSITORY".into(),
                )
            })?;
        if repo.split('/').count() != 2 || repo.split('/').any(str::is_empty) {
            return Err(ReportError::Setting(format!(
                "`{repo}` is not a repository: write OWNER/NAME"
            )));
        }
        let base = super::env("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
        let api = http::Api::new(
            vec![
                ("Authorization", format!("Bearer {token}")),
                ("Accept", "application/vnd.github+json".into()),
                ("X-GitHub-Api-Version", "2022-11-28".into()),
            ],
            " (check the repository and that the token may write issues and pull requests)",
        )?;
        Ok(GitHub {
            api,
            base: base.trim_end_matches('/').to_string(),
            repo,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/repos/{}{path}", self.base, self.repo)
    }

    /// Every item of a paginated list.
    async fn list(&self, path: &str) -> Result<Vec<Value>, ReportError> {
        self.api.list(&self.url(path)).await
    }
}

/// A pull request's conversation, where plans go.
pub struct PullRequest<'a> {
    /// The repository.
    pub gh: &'a GitHub,
    /// Its number.
    pub number: u64,
}

#[async_trait::async_trait]
impl Thread for PullRequest<'_> {
    fn limit(&self) -> usize {
        BODY_LIMIT
    }

    async fn list(&self) -> Result<Vec<(u64, String)>, ReportError> {
        let all = self
            .gh
            .list(&format!("/issues/{}/comments?per_page=100", self.number))
            .await?;
        Ok(all
            .iter()
            .filter_map(|c| Some((c["id"].as_u64()?, c["body"].as_str()?.to_string())))
            .collect())
    }

    async fn create(&self, body: &str) -> Result<u64, ReportError> {
        let url = self.gh.url(&format!("/issues/{}/comments", self.number));
        let (c, _) = self
            .gh
            .api
            .call(Method::POST, &url, Some(&json!({ "body": body })))
            .await?;
        Ok(c["id"].as_u64().unwrap_or_default())
    }

    async fn update(&self, id: u64, body: &str) -> Result<(), ReportError> {
        let url = self.gh.url(&format!("/issues/comments/{id}"));
        self.gh
            .api
            .call(Method::PATCH, &url, Some(&json!({ "body": body })))
            .await
            .map(drop)
    }

    async fn delete(&self, id: u64) -> Result<(), ReportError> {
        let url = self.gh.url(&format!("/issues/comments/{id}"));
        self.gh.api.call(Method::DELETE, &url, None).await.map(drop)
    }
}

/// The pull request of the workflow run: `pull_request.number` (or `number`) of the
/// event file GitHub Actions names in `GITHUB_EVENT_PATH`.
pub fn pr_from_event() -> Result<u64, ReportError> {
    let path = std::env::var("GITHUB_EVENT_PATH").map_err(|_| {
        ReportError::Setting("no pull request: pass --pr N (GITHUB_EVENT_PATH is not set)".into())
    })?;
    let text = std::fs::read_to_string(&path).map_err(|e| ReportError::Input {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let event: Value = serde_json::from_str(&text).map_err(|e| ReportError::Input {
        path: path.clone(),
        message: e.to_string(),
    })?;
    event["pull_request"]["number"]
        .as_u64()
        .or_else(|| event["number"].as_u64())
        .ok_or_else(|| ReportError::Input {
            path,
            message: "this event names no pull request: pass --pr N".into(),
        })
}

/// The hidden first line of a tenant's drift issue.
fn issue_marker(tenant: &str) -> String {
    format!("<!-- landlord:drift tenant={tenant} -->\n")
}

/// The tenant of one of our drift issues.
fn issue_tenant(body: &str) -> Option<&str> {
    body.strip_prefix("<!-- landlord:drift tenant=")?
        .split_once(" -->")
        .map(|(t, _)| t)
}

/// A drift issue as the list gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// Issue number.
    pub number: u64,
    /// Body.
    pub body: String,
}

/// One step of bringing drift issues up to date.
#[derive(Debug, Clone, PartialEq)]
pub enum IssueStep {
    /// Open an issue for a drifted tenant.
    Open {
        /// Tenant id.
        tenant: String,
        /// Title.
        title: String,
        /// Body.
        body: String,
    },
    /// Replace the body of the tenant's open issue.
    Update {
        /// Issue number.
        number: u64,
        /// Tenant id.
        tenant: String,
        /// Body.
        body: String,
    },
    /// The tenant's open issue already says this.
    Keep {
        /// Issue number.
        number: u64,
        /// Tenant id.
        tenant: String,
    },
    /// The tenant was checked and is clean: close its issue.
    Close {
        /// Issue number.
        number: u64,
        /// Tenant id.
        tenant: String,
    },
}

/// The body of a drifted tenant's issue.
fn issue_body(tenant: &str, lines: &[String], checked: usize) -> String {
    let mut body = issue_marker(tenant);
    body.push_str(&format!(
        "### landlord drift: `{tenant}`\n\n**{} of {checked} resources drifted.**\n\n```diff\n",
        lines.iter().filter(|l| !l.starts_with(' ')).count()
    ));
    let tail = format!(
        "```\n\nReview the repair with `landlord plan --tenant {tenant}` and make it with `landlord apply --tenant {tenant}`; this issue closes itself once a drift check finds the tenant clean.\n"
    );
    let mut shown = 0;
    for l in lines {
        if body.len() + l.len() + tail.len() + 64 > BODY_LIMIT {
            break;
        }
        body.push_str(&l.replace("```", "'''"));
        body.push('\n');
        shown += 1;
    }
    if shown < lines.len() {
        body.push_str(&format!("… {} more lines\n", lines.len() - shown));
    }
    body.push_str(&tail);
    body
}

/// The first line of the fleet issue, naming the tenants it stands for.
fn fleet_marker(tenants: &[&str]) -> String {
    format!(
        "<!-- landlord:drift fleet tenants={} -->\n",
        tenants.join(",")
    )
}

/// The tenants the fleet issue stands for, if `body` is the fleet issue's.
fn fleet_tenants(body: &str) -> Option<Vec<&str>> {
    let rest = body.strip_prefix("<!-- landlord:drift fleet tenants=")?;
    let (list, _) = rest.split_once(" -->")?;
    Some(list.split(',').filter(|t| !t.is_empty()).collect())
}

/// The body of the fleet issue: the drifted tenants that have no issue of their own.
fn fleet_body(tenants: &[&str], drifted: &BTreeMap<&str, Vec<String>>, max_new: usize) -> String {
    let mut body = fleet_marker(tenants);
    body.push_str(&format!(
        "### landlord drift: {} tenants\n\nMore tenants drifted at once than get an issue each (at most {max_new} new issues a run): that is often one shared change, not {} separate ones. Review it with `landlord drift --markdown` or `landlord plan`; once fewer tenants are left, each gets its own issue and this one closes.\n\n| Tenant | Drifted resources | First |\n|---|---:|---|\n",
        tenants.len(),
        tenants.len()
    ));
    let mut shown = 0;
    for t in tenants {
        let lines = drifted.get(t).map(Vec::as_slice).unwrap_or(&[]);
        let heads: Vec<&String> = lines.iter().filter(|l| !l.starts_with(' ')).collect();
        let row = format!(
            "| `{t}` | {} | `{}` |\n",
            heads.len(),
            heads
                .first()
                .map(|h| h.replace('`', "'"))
                .unwrap_or_default()
        );
        if body.len() + row.len() + 64 > BODY_LIMIT {
            break;
        }
        body.push_str(&row);
        shown += 1;
    }
    if shown < tenants.len() {
        body.push_str(&format!(
            "\n… and {} more tenants.\n",
            tenants.len() - shown
        ));
    }
    body
}

/// The steps that make the open drift issues match `report`: one open issue per drifted
/// tenant; the issues of tenants checked and found clean are closed; issues of tenants
/// the report did not check are left alone. When more than `max_new` drifted tenants have
/// no issue yet, they share one fleet issue instead, closed once its tenants were checked
/// again and the rest fit.
pub fn issue_steps(open: &[Issue], report: &Report, max_new: usize) -> Vec<IssueStep> {
    let mut by_tenant: BTreeMap<&str, &Issue> = BTreeMap::new();
    let mut fleet: Option<(&Issue, Vec<&str>)> = None;
    for i in open {
        if let Some(t) = issue_tenant(&i.body) {
            by_tenant.entry(t).or_insert(i);
        } else if let Some(ts) = fleet_tenants(&i.body) {
            fleet.get_or_insert((i, ts));
        }
    }
    let drifted = drift::tenant_lines(report);
    let untracked: Vec<&str> = drifted
        .keys()
        .copied()
        .filter(|t| !by_tenant.contains_key(t))
        .collect();
    let overflow = untracked.len() > max_new;
    let mut steps = Vec::new();
    for (tenant, lines) in &drifted {
        let checked = report.tenants.get(*tenant).copied().unwrap_or(0);
        let body = issue_body(tenant, lines, checked);
        let tenant = tenant.to_string();
        steps.push(match by_tenant.get(tenant.as_str()) {
            Some(i) if i.body == body => IssueStep::Keep {
                number: i.number,
                tenant,
            },
            Some(i) => IssueStep::Update {
                number: i.number,
                tenant,
                body,
            },
            None if overflow => continue,
            None => IssueStep::Open {
                title: format!("Drift in tenant {tenant}"),
                tenant,
                body,
            },
        });
    }
    for (tenant, issue) in by_tenant {
        if !drifted.contains_key(tenant) && report.tenants.contains_key(tenant) {
            steps.push(IssueStep::Close {
                number: issue.number,
                tenant: tenant.to_string(),
            });
        }
    }
    let fleet_key = || "the fleet".to_string();
    match (fleet, overflow) {
        (Some((i, _)), true) => {
            let body = fleet_body(&untracked, &drifted, max_new);
            steps.push(if i.body == body {
                IssueStep::Keep {
                    number: i.number,
                    tenant: fleet_key(),
                }
            } else {
                IssueStep::Update {
                    number: i.number,
                    tenant: fleet_key(),
                    body,
                }
            });
        }
        (None, true) => steps.push(IssueStep::Open {
            tenant: fleet_key(),
            title: format!("Drift in {} tenants", untracked.len()),
            body: fleet_body(&untracked, &drifted, max_new),
        }),
        (Some((i, listed)), false) if listed.iter().all(|t| report.tenants.contains_key(*t)) => {
            steps.push(IssueStep::Close {
                number: i.number,
                tenant: fleet_key(),
            })
        }
        _ => {}
    }
    steps
}

/// Brings the repository's drift issues (label `label`) up to date with `report`; the
/// lines saying what was (or, with `dry_run`, would be) done.
pub async fn sync_issues(
    gh: &GitHub,
    report: &Report,
    label: &str,
    max_new: usize,
    dry_run: bool,
) -> Result<Vec<String>, ReportError> {
    let open: Vec<Issue> = gh
        .list(&format!("/issues?state=open&labels={label}&per_page=100"))
        .await?
        .iter()
        .filter(|i| i.get("pull_request").is_none())
        .filter_map(|i| {
            Some(Issue {
                number: i["number"].as_u64()?,
                body: i["body"].as_str().unwrap_or_default().to_string(),
            })
        })
        .collect();
    let mut said = Vec::new();
    for step in issue_steps(&open, report, max_new) {
        let (will, did) = match &step {
            IssueStep::Open { tenant, .. } => {
                (format!("open an issue for {tenant}"), String::new())
            }
            IssueStep::Update { number, tenant, .. } => (
                format!("update #{number} ({tenant} still drifts)"),
                format!("updated #{number} ({tenant} still drifts)"),
            ),
            IssueStep::Keep { number, tenant } => (
                format!("keep #{number} ({tenant}, unchanged)"),
                format!("kept #{number} ({tenant}, unchanged)"),
            ),
            IssueStep::Close { number, tenant } => (
                format!("close #{number} ({tenant} is clean again)"),
                format!("closed #{number} ({tenant} is clean again)"),
            ),
        };
        if dry_run {
            said.push(format!("would {will}"));
            continue;
        }
        match step {
            IssueStep::Open {
                tenant,
                title,
                body,
            } => {
                let (i, _) = gh
                    .api
                    .call(
                        Method::POST,
                        &gh.url("/issues"),
                        Some(&json!({ "title": title, "body": body, "labels": [label] })),
                    )
                    .await?;
                said.push(format!("opened #{} ({tenant} drifts)", i["number"]));
                continue;
            }
            IssueStep::Update { number, body, .. } => {
                gh.api
                    .call(
                        Method::PATCH,
                        &gh.url(&format!("/issues/{number}")),
                        Some(&json!({ "body": body })),
                    )
                    .await?;
            }
            IssueStep::Close { number, tenant } => {
                let note = format!(
                    "A drift check at {} found `{tenant}` matching its recorded state: closing.",
                    crate::state::now_rfc3339()
                );
                gh.api
                    .call(
                        Method::POST,
                        &gh.url(&format!("/issues/{number}/comments")),
                        Some(&json!({ "body": note })),
                    )
                    .await?;
                gh.api
                    .call(
                        Method::PATCH,
                        &gh.url(&format!("/issues/{number}")),
                        Some(&json!({ "state": "closed", "state_reason": "completed" })),
                    )
                    .await?;
            }
            IssueStep::Keep { .. } => {}
        }
        said.push(did);
    }
    Ok(said)
}

/// The drift report in `path`, as `landlord drift --json` wrote it.
pub fn read_drift(path: &std::path::Path) -> Result<Report, ReportError> {
    let bad = |message: String| ReportError::Input {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    if doc["kind"] != "drift" || doc["format_version"] != 1 {
        return Err(bad(
            "not a drift report: write it with `landlord drift --json > FILE`".into(),
        ));
    }
    if doc.get("tenants").is_none() {
        return Err(bad(
            "this drift report lists no tenants checked (an older landlord wrote it): run `landlord drift --json` again".into(),
        ));
    }
    serde_json::from_value(doc).map_err(|e| bad(format!("not a drift report: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(drifted: &[&str], checked: &[&str]) -> Report {
        let text = serde_json::to_string(&json!({
            "checked": checked.len() * 2,
            "tenants": checked.iter().map(|t| (t.to_string(), 2)).collect::<BTreeMap<_, _>>(),
            "items": drifted.iter().map(|t| json!({
                "address": format!("{t}/local_file.site"),
                "kind": "changed",
                "attributes": [{"name": "content", "before": "a", "after": "b", "sensitive": false, "forces_replace": false}],
            })).collect::<Vec<_>>(),
        }))
        .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn drift_issues_open_update_and_close_only_for_checked_tenants() {
        let r = report(
            &["acme", "globex"],
            &["acme", "globex", "initech", "umbrella"],
        );
        let body = |t: &str| issue_body(t, &drift::tenant_lines(&r)[t], 2);
        let open = vec![
            Issue {
                number: 7,
                body: format!("{}old text", issue_marker("acme")),
            },
            Issue {
                number: 8,
                body: format!("{}old text", issue_marker("initech")),
            },
            Issue {
                number: 9,
                body: format!("{}old text", issue_marker("hooli")),
            },
            Issue {
                number: 10,
                body: "opened by a person".into(),
            },
        ];
        let steps = issue_steps(&open, &r, 25);
        assert_eq!(
            steps,
            vec![
                IssueStep::Update {
                    number: 7,
                    tenant: "acme".into(),
                    body: body("acme")
                },
                IssueStep::Open {
                    tenant: "globex".into(),
                    title: "Drift in tenant globex".into(),
                    body: body("globex")
                },
                IssueStep::Close {
                    number: 8,
                    tenant: "initech".into()
                },
            ],
            "hooli was not checked, #10 is not ours"
        );
        assert!(body("acme").contains("~ acme/local_file.site: changed out of band"));
    }

    #[test]
    fn a_mass_drift_shares_one_fleet_issue_until_few_enough_are_left() {
        let many: Vec<String> = (0..40).map(|i| format!("t{i:02}")).collect();
        let all: Vec<&str> = many.iter().map(String::as_str).collect();
        let r = report(&all, &all);
        let open = vec![Issue {
            number: 3,
            body: format!("{}old", issue_marker("t05")),
        }];
        let steps = issue_steps(&open, &r, 25);
        assert_eq!(steps.len(), 2, "t05's issue and one fleet issue: {steps:?}");
        assert!(matches!(&steps[0], IssueStep::Update { number: 3, .. }));
        let IssueStep::Open { title, body, .. } = &steps[1] else {
            panic!("{steps:?}")
        };
        assert_eq!(title, "Drift in 39 tenants");
        assert_eq!(fleet_tenants(body).unwrap().len(), 39);
        assert!(body.contains("| `t39` | 1 | `~ t39/local_file.site: changed out of band` |"));
        // Later only three are left without an issue: they get their own, the fleet issue closes.
        let fleet = Issue {
            number: 4,
            body: body.clone(),
        };
        let few = report(&all[..3], &all);
        let steps = issue_steps(&[fleet.clone()], &few, 25);
        assert_eq!(
            steps
                .iter()
                .filter(|s| matches!(s, IssueStep::Open { .. }))
                .count(),
            3
        );
        assert!(steps.contains(&IssueStep::Close {
            number: 4,
            tenant: "the fleet".into()
        }));
        // A shard that did not check the fleet issue's tenants leaves it open.
        let other = report(&[], &["zz"]);
        assert!(issue_steps(&[fleet], &other, 25).is_empty());
    }
}
