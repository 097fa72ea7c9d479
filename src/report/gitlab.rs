//! GitLab as the place of review: the plan as our notes on a merge request, edited in
//! place on every pipeline (see [`super::comments`]). Token, API address, project and
//! merge request come from the environment GitLab CI sets, or from flags.

use reqwest::Method;
use serde_json::json;

use super::comments::Thread;
use super::{http, ReportError};

/// Characters GitLab accepts in one note.
pub const NOTE_LIMIT: usize = 1_000_000;

/// A merge request's notes, through the REST API v4.
pub struct MergeRequest {
    api: http::Api,
    notes: String,
}

impl MergeRequest {
    /// Merge request `iid` (or `CI_MERGE_REQUEST_IID`) of `project` (or `CI_PROJECT_ID`;
    /// an id or a `group/name` path) at `CI_API_V4_URL` (or gitlab.com), with the token of
    /// `LANDLORD_GITLAB_TOKEN` (or `GITLAB_TOKEN`).
    pub fn from_env(project: Option<&str>, iid: Option<u64>) -> Result<MergeRequest, ReportError> {
        let token = super::env("LANDLORD_GITLAB_TOKEN")
            .or_else(|| super::env("GITLAB_TOKEN"))
            .ok_or_else(|| {
                ReportError::Setting(
                    "no GitLab token: set LANDLORD_GITLAB_TOKEN to a token with the api scope (CI_JOB_TOKEN may not write notes)".into(),
                )
            })?;
        let project = project
            .map(str::to_string)
            .or_else(|| super::env("CI_PROJECT_ID"))
            .ok_or_else(|| {
                ReportError::Setting("no project: pass --project ID or set CI_PROJECT_ID".into())
            })?;
        let iid = match iid {
            Some(n) => n,
            None => super::env("CI_MERGE_REQUEST_IID")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| {
                    ReportError::Setting(
                        "no merge request: pass --mr IID or run in a merge request pipeline (CI_MERGE_REQUEST_IID)".into(),
                    )
                })?,
        };
        let base =
            super::env("CI_API_V4_URL").unwrap_or_else(|| "https://gitlab.com/api/v4".into());
        let api = http::Api::new(
            vec![("PRIVATE-TOKEN", token)],
            " (check the project and that the token may write notes)",
        )?;
        Ok(MergeRequest {
            api,
            notes: format!(
                "{}/projects/{}/merge_requests/{iid}/notes",
                base.trim_end_matches('/'),
                project.replace('/', "%2F")
            ),
        })
    }
}

#[async_trait::async_trait]
impl Thread for MergeRequest {
    fn limit(&self) -> usize {
        NOTE_LIMIT
    }

    async fn list(&self) -> Result<Vec<(u64, String)>, ReportError> {
        let url = format!("{}?sort=asc&order_by=created_at&per_page=100", self.notes);
        Ok(self
            .api
            .list(&url)
            .await?
            .iter()
            .filter(|n| n["system"] != true)
            .filter_map(|n| Some((n["id"].as_u64()?, n["body"].as_str()?.to_string())))
            .collect())
    }

    async fn create(&self, body: &str) -> Result<u64, ReportError> {
        let (n, _) = self
            .api
            .call(Method::POST, &self.notes, Some(&json!({ "body": body })))
            .await?;
        Ok(n["id"].as_u64().unwrap_or_default())
    }

    async fn update(&self, id: u64, body: &str) -> Result<(), ReportError> {
        let url = format!("{}/{id}", self.notes);
        self.api
            .call(Method::PUT, &url, Some(&json!({ "body": body })))
            .await
            .map(drop)
    }

    async fn delete(&self, id: u64) -> Result<(), ReportError> {
        let url = format!("{}/{id}", self.notes);
        self.api.call(Method::DELETE, &url, None).await.map(drop)
    }
}
