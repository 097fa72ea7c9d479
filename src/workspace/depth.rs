//! A linear-time guard against deeply nested YAML: parsers and the code that walks the
//! values they build take time quadratic in the nesting depth, so a hostile or broken
//! file of a few hundred kilobytes could stall a run. Documents nested deeper than
//! [`MAX_DEPTH`] are refused before any value is built.

/// How deep mappings and sequences may nest in any workspace YAML file.
pub const MAX_DEPTH: usize = 64;

/// The first line (1-based) at which `text` nests deeper than [`MAX_DEPTH`], if any.
///
/// Depth counts enclosing block levels (by indentation), `- ` entries that open a
/// sequence on the same line, and open `[`/`{` flow collections (outside quotes).
/// Block scalar bodies (`|`, `>`) are skipped.
pub fn too_deep(text: &str) -> Option<usize> {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    let mut scalar_at: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let body = line[indent..].trim_end();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        if let Some(at) = scalar_at {
            if indent > at {
                continue;
            }
            scalar_at = None;
        }
        if flow == 0 {
            while indents.last().is_some_and(|&i| i >= indent) {
                indents.pop();
            }
            indents.push(indent);
        }
        let mut rest = body;
        let mut dashes = 0;
        while let Some(r) = rest
            .strip_prefix("- ")
            .or_else(|| (rest == "-").then_some(""))
        {
            dashes += 1;
            rest = r.trim_start_matches(' ');
        }
        let (deepest, open) = flow_depth(rest, flow);
        if indents.len() + dashes + deepest > MAX_DEPTH {
            return Some(n + 1);
        }
        flow = open;
        if flow == 0 && ends_block_scalar(rest) {
            scalar_at = Some(indent);
        }
    }
    None
}

/// The deepest flow nesting reached on a line and the depth left open at its end.
pub(super) fn flow_depth(s: &str, mut depth: usize) -> (usize, usize) {
    let mut deepest = depth;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => break,
            (None, '[' | '{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    (deepest, depth)
}

/// Whether a line ends with a block scalar indicator (`key: |`, `- >-`, `|2`).
pub(super) fn ends_block_scalar(s: &str) -> bool {
    let last = s.rsplit([' ', ':']).next().unwrap_or("");
    let mut chars = last.chars();
    matches!(chars.next(), Some('|' | '>'))
        && chars.all(|c| c == '-' || c == '+' || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_documents_pass() {
        let text = "id: acme\nsettings:\n  nginx: { rate: [1, 2, {a: b}] }\n  list:\n    - a\n    - - b\n      - c\nscript: |\n        deeply\n                  indented\ntext\n";
        assert_eq!(too_deep(text), None);
    }

    #[test]
    fn deep_block_flow_and_sequence_nesting_are_refused_with_the_line() {
        let block: String = (0..100)
            .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
            .collect();
        assert_eq!(too_deep(&block), Some(65), "line 65 is the 65th level");
        let flow = format!("a: {}1{}\n", "[".repeat(100), "]".repeat(100));
        assert_eq!(too_deep(&flow), Some(1));
        let seq = format!("{}x\n", "- ".repeat(100));
        assert_eq!(too_deep(&seq), Some(1));
        let quoted = format!("a: \"{}\"\n", "[".repeat(100));
        assert_eq!(too_deep(&quoted), None);
    }

    #[test]
    fn a_huge_nested_document_is_refused_in_linear_time() {
        let text = format!("{}1{}", "[".repeat(200_000), "]".repeat(200_000));
        let start = std::time::Instant::now();
        assert_eq!(too_deep(&text), Some(1));
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }
}
