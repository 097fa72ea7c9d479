//! Markdown documents for pull-request comments and issues: a title, a head, a table with
//! a row per tenant and a collapsible section per tenant. One document is either cut to
//! one comment (rows and sections past the budget are counted, not shown) or split into
//! numbered parts that together hold everything.

use std::fmt::Write;

/// Characters GitHub accepts in one comment or issue body.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// Room kept in every part for its title line.
const TITLE_ROOM: usize = 96;

/// One tenant's collapsible section.
#[derive(Debug, Clone)]
pub struct Section {
    /// Tenant id.
    pub name: String,
    /// The `<summary>` text after the tenant's name.
    pub summary: String,
    /// Lines of the fenced block.
    pub lines: Vec<String>,
}

impl Section {
    fn render(&self, lines: &[String], cut: Option<(usize, &str)>) -> String {
        let mut s = format!(
            "<details><summary><b>{}</b>: {}</summary>\n\n```diff\n",
            self.name, self.summary
        );
        for l in lines {
            s.push_str(&l.replace("```", "'''"));
            s.push('\n');
        }
        if let Some((more, _)) = cut {
            let _ = writeln!(s, "… {more} more lines");
        }
        s.push_str("```\n</details>\n\n");
        if let Some((_, hint)) = cut {
            let _ = writeln!(
                s,
                "_{} is cut short to fit one comment: run `{}` for all of it._\n",
                self.name,
                hint.replace("{tenant}", &self.name)
            );
        }
        s
    }

    /// The section whole.
    fn full(&self) -> String {
        self.render(&self.lines, None)
    }

    /// The section cut at a line boundary to at most `room` characters.
    fn fitted(&self, room: usize, hint: &str) -> String {
        let whole = self.full();
        if whole.len() <= room {
            return whole;
        }
        let mut keep = self.lines.len();
        loop {
            let s = self.render(&self.lines[..keep], Some((self.lines.len() - keep, hint)));
            if s.len() <= room || keep == 0 {
                return s;
            }
            // Drop lines in proportion to the excess, at least one.
            let over = s.len() - room;
            let avg = (s.len() / (keep + 1)).max(1);
            keep = keep.saturating_sub((over / avg).max(1));
        }
    }
}

/// A markdown report for reviewers.
#[derive(Debug, Clone, Default)]
pub struct Doc {
    /// The heading, e.g. `### landlord plan`.
    pub title: String,
    /// Everything between the heading and the table.
    pub head: String,
    /// The table's header lines (column names and alignment row); empty for no table.
    pub table_header: String,
    /// One row per tenant.
    pub rows: Vec<String>,
    /// What comes between the table and the sections (a graph).
    pub middle: String,
    /// One section per tenant.
    pub sections: Vec<Section>,
    /// The command that shows one tenant's details (`{tenant}` stands for its id).
    pub hint: String,
}

impl Doc {
    /// The document in one comment of at most `budget` characters: the table gets at
    /// most half of it; rows and sections that do not fit are counted.
    pub fn single(&self, budget: usize) -> String {
        let mut out = format!("{}\n\n{}", self.title, self.head);
        if !self.table_header.is_empty() {
            out.push_str(&self.table_header);
            let mut listed = 0;
            for row in &self.rows {
                if out.len() > budget / 2 {
                    break;
                }
                out.push_str(row);
                listed += 1;
            }
            if listed < self.rows.len() {
                let columns = self
                    .table_header
                    .lines()
                    .next()
                    .unwrap_or("")
                    .matches('|')
                    .count();
                let _ = writeln!(
                    out,
                    "| _{} more tenants_ |{}",
                    self.rows.len() - listed,
                    " |".repeat(columns.saturating_sub(2))
                );
            }
            out.push('\n');
        }
        out.push_str(&self.middle);
        let mut omitted = 0;
        for sec in &self.sections {
            let s = sec.full();
            if out.len() + s.len() > budget {
                omitted += 1;
            } else {
                out.push_str(&s);
            }
        }
        if omitted > 0 {
            let _ = writeln!(
                out,
                "_Details of {omitted} tenants omitted to fit the comment size limit. Run `{}` (or `--json`) for them._",
                self.hint.replace("{tenant}", "T")
            );
        }
        out
    }

    /// The document in parts of at most `limit` characters each, in order: the head and
    /// table first (its header repeated in each part it continues into), then whole
    /// sections; a section longer than a part is cut with a note.
    pub fn parts(&self, limit: usize) -> Vec<String> {
        let room = limit.saturating_sub(TITLE_ROOM).max(1024);
        let mut parts: Vec<String> = vec![String::new()];
        let push = |block: &str, parts: &mut Vec<String>, header: Option<&str>| {
            let cur = parts.last_mut().expect("one part at least");
            if !cur.is_empty() && cur.len() + block.len() > room {
                let mut next = String::new();
                if let Some(h) = header {
                    next.push_str(h);
                }
                parts.push(next);
            }
            parts.last_mut().expect("one part at least").push_str(block);
        };
        push(&self.head, &mut parts, None);
        if !self.table_header.is_empty() {
            push(&self.table_header, &mut parts, None);
            for row in &self.rows {
                push(row, &mut parts, Some(&self.table_header));
            }
            push("\n", &mut parts, None);
        }
        push(&self.middle, &mut parts, None);
        for sec in &self.sections {
            push(&sec.fitted(room, &self.hint), &mut parts, None);
        }
        let n = parts.len();
        parts
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                if n == 1 {
                    format!("{}\n\n{body}", self.title)
                } else {
                    format!("{} (part {} of {n})\n\n{body}", self.title, i + 1)
                }
            })
            .collect()
    }
}

/// The file of part `i` (from 0) of a document written to `first`: `plan.md`, then
/// `plan.2.md`, `plan.3.md`, ….
pub fn part_path(first: &std::path::Path, i: usize) -> std::path::PathBuf {
    if i == 0 {
        return first.to_path_buf();
    }
    let stem = first
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match first.extension() {
        Some(ext) => format!("{stem}.{}.{}", i + 1, ext.to_string_lossy()),
        None => format!("{stem}.{}", i + 1),
    };
    first.with_file_name(name)
}

/// Writes `parts` to `first` and its numbered siblings, removing siblings left over
/// from an earlier, longer document; returns the paths written.
pub fn write_parts(
    first: &std::path::Path,
    parts: &[String],
) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut written = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let path = part_path(first, i);
        std::fs::write(&path, p)?;
        written.push(path);
    }
    let mut i = parts.len().max(1);
    loop {
        let stale = part_path(first, i);
        match std::fs::remove_file(&stale) {
            Ok(()) => i += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

/// The parts of a document written to `first`, in order (what `write_parts` wrote).
pub fn read_parts(first: &std::path::Path) -> std::io::Result<Vec<String>> {
    let mut parts = vec![std::fs::read_to_string(first)?];
    loop {
        match std::fs::read_to_string(part_path(first, parts.len())) {
            Ok(p) => parts.push(p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(parts),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(tenants: usize, lines: usize) -> Doc {
        Doc {
            title: "### landlord plan".into(),
            head: "**Plan: many.**\n\n".into(),
            table_header: "| Tenant | Add |\n|---|---:|\n".into(),
            rows: (0..tenants)
                .map(|i| format!("| `t{i:05}` | 1 |\n"))
                .collect(),
            middle: String::new(),
            sections: (0..tenants)
                .map(|i| Section {
                    name: format!("t{i:05}"),
                    summary: format!("{lines} changes"),
                    lines: (0..lines).map(|l| format!("+ t{i:05}/x.r{l}")).collect(),
                })
                .collect(),
            hint: "landlord plan --tenant {tenant}".into(),
        }
    }

    #[test]
    fn parts_stay_under_the_limit_and_keep_every_tenant_whole_and_in_order() {
        let d = doc(3000, 6);
        let parts = d.parts(GITHUB_COMMENT_LIMIT);
        assert!(parts.len() > 3, "{} parts", parts.len());
        for (i, p) in parts.iter().enumerate() {
            assert!(
                p.chars().count() <= GITHUB_COMMENT_LIMIT,
                "part {i}: {}",
                p.len()
            );
            assert!(p.starts_with(&format!(
                "### landlord plan (part {} of {})",
                i + 1,
                parts.len()
            )));
            assert_eq!(
                p.matches("<details>").count(),
                p.matches("</details>").count()
            );
            assert_eq!(p.matches("```").count() % 2, 0, "fences close in part {i}");
        }
        assert!(
            parts[0].contains("**Plan: many.**"),
            "the summary comes first"
        );
        let all = parts.concat();
        let mut at = 0;
        for i in 0..3000 {
            let s = format!("<b>t{i:05}</b>");
            let found = all[at..]
                .find(&s)
                .unwrap_or_else(|| panic!("t{i:05} missing or out of order"));
            at += found;
        }
        assert_eq!(
            all.matches("| `t0").count(),
            3000,
            "every row is in the table"
        );
    }

    #[test]
    fn a_tenant_longer_than_a_part_is_cut_with_a_note() {
        let d = doc(2, 20_000);
        let parts = d.parts(GITHUB_COMMENT_LIMIT);
        assert!(parts.iter().all(|p| p.len() <= GITHUB_COMMENT_LIMIT));
        let all = parts.concat();
        assert!(all.contains("_t00000 is cut short to fit one comment: run `landlord plan --tenant t00000` for all of it._"));
        assert!(all.contains("more lines\n```\n</details>"));
    }

    #[test]
    fn a_small_document_is_one_part_equal_to_the_single_comment() {
        let d = doc(3, 2);
        assert_eq!(d.parts(GITHUB_COMMENT_LIMIT), vec![d.single(60_000)]);
    }

    #[test]
    fn parts_are_written_beside_the_first_and_stale_ones_removed() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("plan.md");
        let three: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        write_parts(&first, &three).unwrap();
        assert!(dir.path().join("plan.3.md").exists());
        write_parts(&first, &three[..1]).unwrap();
        assert!(!dir.path().join("plan.2.md").exists());
        assert!(!dir.path().join("plan.3.md").exists());
        assert_eq!(read_parts(&first).unwrap(), vec!["a".to_string()]);
    }
}
