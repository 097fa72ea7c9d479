//! A report kept as our comments in one review thread (a GitHub pull request, a GitLab
//! merge request): one comment per part, found again by a hidden first line, edited in
//! place on later runs, with parts the report no longer has deleted. Comments without our
//! marker are never touched.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::ReportError;

/// A review thread's comments, through its service's API.
#[async_trait]
pub trait Thread: Send + Sync {
    /// Characters one comment may hold.
    fn limit(&self) -> usize;
    /// Every comment as (id, body), oldest first.
    async fn list(&self) -> Result<Vec<(u64, String)>, ReportError>;
    /// Posts a comment; its id.
    async fn create(&self, body: &str) -> Result<u64, ReportError>;
    /// Replaces a comment's body.
    async fn update(&self, id: u64, body: &str) -> Result<(), ReportError>;
    /// Deletes a comment.
    async fn delete(&self, id: u64) -> Result<(), ReportError>;
}

/// The hidden first line of part `part` (from 1) of the comment named `marker`.
pub fn marker_line(marker: &str, part: usize) -> String {
    format!("<!-- landlord:{marker} part {part} -->\n")
}

/// The part number of one of our comments named `marker`.
fn our_part(marker: &str, body: &str) -> Option<usize> {
    let rest = body.strip_prefix(&format!("<!-- landlord:{marker} part "))?;
    rest.split_once(" -->")?.0.parse().ok()
}

/// One step of bringing a thread's comments up to date.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Post part `part` as a new comment.
    Create {
        /// Part number, from 1.
        part: usize,
        /// The body, marker included.
        body: String,
    },
    /// Replace the body of our comment `id`.
    Update {
        /// Comment id.
        id: u64,
        /// Part number.
        part: usize,
        /// The new body.
        body: String,
    },
    /// Our comment `id` already says this.
    Keep {
        /// Comment id.
        id: u64,
        /// Part number.
        part: usize,
    },
    /// Our comment `id` holds a part the report no longer has, or repeats a part.
    Delete {
        /// Comment id.
        id: u64,
        /// Part number.
        part: usize,
    },
}

/// The steps that make the comments named `marker` hold `parts`: existing parts are
/// updated in place, missing ones posted, extra ones (and repeats left by two runs at
/// once) deleted.
pub fn steps(existing: &[(u64, String)], parts: &[String], marker: &str) -> Vec<Step> {
    let mut ours: BTreeMap<usize, (u64, &str)> = BTreeMap::new();
    let mut repeats = Vec::new();
    for (id, body) in existing {
        let Some(part) = our_part(marker, body) else {
            continue;
        };
        if part == 0 || ours.contains_key(&part) {
            repeats.push(Step::Delete { id: *id, part });
        } else {
            ours.insert(part, (*id, body));
        }
    }
    let mut steps = Vec::new();
    for (i, text) in parts.iter().enumerate() {
        let part = i + 1;
        let body = format!("{}{text}", marker_line(marker, part));
        steps.push(match ours.remove(&part) {
            Some((id, old)) if old == body => Step::Keep { id, part },
            Some((id, _)) => Step::Update { id, part, body },
            None => Step::Create { part, body },
        });
    }
    steps.extend(
        ours.into_iter()
            .map(|(part, (id, _))| Step::Delete { id, part }),
    );
    steps.extend(repeats);
    steps
}

/// Brings `thread`'s comments named `marker` up to date with `parts`; the lines saying
/// what was (or, with `dry_run`, would be) done.
pub async fn sync(
    thread: &dyn Thread,
    parts: &[String],
    marker: &str,
    dry_run: bool,
) -> Result<Vec<String>, ReportError> {
    let limit = thread.limit();
    for (i, p) in parts.iter().enumerate() {
        let size = marker_line(marker, i + 1).len() + p.len();
        if size > limit {
            return Err(ReportError::Setting(format!(
                "part {} has {size} characters, over the {limit} a comment may hold: write the markdown with --markdown-out and a --markdown-limit under that",
                i + 1
            )));
        }
    }
    let existing = thread.list().await?;
    let n = parts.len();
    let mut said = Vec::new();
    for step in steps(&existing, parts, marker) {
        let (will, did) = match &step {
            Step::Create { part, .. } => (
                format!("post part {part} of {n} as a new comment"),
                String::new(),
            ),
            Step::Update { id, part, .. } => (
                format!("update comment {id} (part {part} of {n})"),
                format!("updated comment {id} (part {part} of {n})"),
            ),
            Step::Keep { id, part } => (
                format!("keep comment {id} (part {part} of {n}, unchanged)"),
                format!("kept comment {id} (part {part} of {n}, unchanged)"),
            ),
            Step::Delete { id, part } => (
                format!("delete comment {id} (part {part}, no longer in the report)"),
                format!("deleted comment {id} (part {part}, no longer in the report)"),
            ),
        };
        if dry_run {
            said.push(format!("would {will}"));
            continue;
        }
        match step {
            Step::Create { part, body } => {
                let id = thread.create(&body).await?;
                said.push(format!("posted comment {id} (part {part} of {n})"));
                continue;
            }
            Step::Update { id, body, .. } => thread.update(id, &body).await?,
            Step::Delete { id, .. } => thread.delete(id).await?,
            Step::Keep { .. } => {}
        }
        said.push(did);
    }
    Ok(said)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_updated_in_place_posted_when_missing_and_deleted_when_extra() {
        let parts: Vec<String> = vec!["one".into(), "two".into()];
        let existing = vec![
            (1, "someone else's review".to_string()),
            (2, format!("{}old one", marker_line("plan", 1))),
            (3, format!("{}three", marker_line("plan", 3))),
            (4, format!("{}other workspace", marker_line("plan-eu", 1))),
            (
                5,
                format!("{}a repeat from a racing run", marker_line("plan", 1)),
            ),
        ];
        assert_eq!(
            steps(&existing, &parts, "plan"),
            vec![
                Step::Update {
                    id: 2,
                    part: 1,
                    body: format!("{}one", marker_line("plan", 1))
                },
                Step::Create {
                    part: 2,
                    body: format!("{}two", marker_line("plan", 2))
                },
                Step::Delete { id: 3, part: 3 },
                Step::Delete { id: 5, part: 1 },
            ]
        );
        let same = vec![(2, format!("{}one", marker_line("plan", 1)))];
        assert_eq!(
            steps(&same, &parts[..1], "plan"),
            vec![Step::Keep { id: 2, part: 1 }]
        );
    }
}
