//! Canonical formatting of tenant and tier YAML (`landlord fmt`): two spaces per
//! nesting level, no trailing whitespace, Unix line ends, at most one blank line in a
//! row, one final newline; comments, key order, quoting and flow collections are kept.
//! A file is rewritten only when the formatted text means exactly the same document.

/// `text` in canonical form, or `None` when reformatting would change what it means (the
/// file is then left as it is).
pub fn canonical(text: &str) -> Option<String> {
    let out = reindent(text);
    let same = match (
        serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text),
        serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&out),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    same.then_some(out)
}

use super::depth::{ends_block_scalar, flow_depth};

/// Leading spaces of a line.
fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn reindent(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    // (original indent, new indent) of the enclosing block levels.
    let mut levels: Vec<(usize, usize)> = Vec::new();
    // A block scalar or multi-line flow collection: lines more indented than its owner
    // move by the owner's shift.
    let mut carried: Option<(usize, isize)> = None;
    let mut flow = 0usize;
    let mut out: Vec<String> = Vec::new();
    let mut pending_comments: Vec<&str> = Vec::new();
    for line in &lines {
        let body = line.trim_start_matches(' ');
        let indent = indent_of(line);
        if let Some((owner, shift)) = carried {
            let in_flow = flow > 0;
            if in_flow || body.is_empty() || indent > owner {
                if body.is_empty() {
                    out.push(String::new());
                } else {
                    let new = (indent as isize + shift).max(0) as usize;
                    out.push(format!("{}{body}", " ".repeat(new)));
                    flow = flow_depth(body, flow).1;
                }
                if in_flow && flow == 0 {
                    // The flow collection closed: what follows is structure again.
                    carried = None;
                }
                continue;
            }
            carried = None;
        }
        if body.is_empty() {
            flush(&mut out, &mut pending_comments, None);
            out.push(String::new());
            continue;
        }
        if body.starts_with('#') {
            pending_comments.push(body);
            continue;
        }
        while levels.last().is_some_and(|&(o, _)| o > indent) {
            levels.pop();
        }
        let new = match levels.last() {
            Some(&(o, n)) if o == indent => n,
            Some(&(_, n)) => {
                levels.push((indent, n + 2));
                n + 2
            }
            None => {
                levels.push((indent, 0));
                0
            }
        };
        flush(&mut out, &mut pending_comments, Some(new));
        out.push(format!("{}{body}", " ".repeat(new)));
        flow = flow_depth(body, 0).1;
        let shift = new as isize - indent as isize;
        if flow > 0 || ends_block_scalar(body.split(" #").next().unwrap_or(body)) {
            carried = Some((indent, shift));
        }
    }
    flush(&mut out, &mut pending_comments, Some(0));
    // At most one blank line in a row, none at the start or the end.
    let mut text = String::new();
    let mut blank = true;
    for l in out {
        if l.is_empty() {
            if !blank {
                text.push('\n');
            }
            blank = true;
        } else {
            text.push_str(&l);
            text.push('\n');
            blank = false;
        }
    }
    while text.ends_with("\n\n") {
        text.pop();
    }
    text
}

/// Comments take the indentation of the line they precede.
fn flush(out: &mut Vec<String>, comments: &mut Vec<&str>, indent: Option<usize>) {
    let pad = " ".repeat(indent.unwrap_or(0));
    for c in comments.drain(..) {
        out.push(format!("{pad}{c}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indentation_spacing_and_blank_lines_become_canonical() {
        let text = "id: acme   \r\nsettings:\n    nginx:\n         rate: 5\n    # a comment\n    list:\n    - a\n    -   b\n\n\n\nplan: basic";
        let out = canonical(text).unwrap();
        assert_eq!(
            out,
            "id: acme\nsettings:\n  nginx:\n    rate: 5\n  # a comment\n  list:\n  - a\n  -   b\n\nplan: basic\n"
        );
        assert_eq!(canonical(&out).unwrap(), out, "formatting is idempotent");
    }

    #[test]
    fn block_scalars_and_multi_line_flow_keep_their_shape() {
        let text = "a:\n    script: |\n        line one\n          indented more\n    flow: [1,\n           2]\nb: 1\n";
        let out = canonical(text).unwrap();
        assert_eq!(
            out,
            "a:\n  script: |\n      line one\n        indented more\n  flow: [1,\n         2]\nb: 1\n"
        );
    }

    #[test]
    fn a_document_it_cannot_keep_the_meaning_of_is_left_alone() {
        assert_eq!(canonical("a: [1, 2\n"), None, "not YAML to begin with");
    }
}
