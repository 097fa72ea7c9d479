//! "Did you mean …?": the nearest known name to a misspelt one, for every message that
//! refuses an unknown key, table or field. Must not import other crate modules.

/// Edit distance (insertions, deletions, substitutions, adjacent swaps) between two names.
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev2 = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        prev2 = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

/// The known name closest to `word`, when it is close enough to be a typo of it.
pub fn nearest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    known
        .iter()
        .map(|k| (distance(&word.to_lowercase(), &k.to_lowercase()), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// ` (did you mean `x`?)` when a known name is close to `word`, else nothing.
pub fn hint(word: &str, known: &[&str]) -> String {
    nearest(word, known)
        .map(|k| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

/// The message for an unknown `what` named `word`: the nearest known name, or the list.
pub fn unknown(what: &str, word: &str, known: &[&str]) -> String {
    match nearest(word, known) {
        Some(k) => format!("unknown {what} `{word}` (did you mean `{k}`?)"),
        None => format!(
            "unknown {what} `{word}` (expected one of {})",
            known.join(", ")
        ),
    }
}

/// serde's "unknown field `x`, expected one of `a`, `b`" with the nearest name named.
pub fn with_hint(message: &str) -> String {
    let re = regex::Regex::new(r"unknown (field|variant) `([^`]*)`, expected (?:one of )?(.*)")
        .expect("a valid pattern");
    let Some(c) = re.captures(message) else {
        return message.to_string();
    };
    let known: Vec<&str> = c[3]
        .split(", ")
        .map(|k| {
            k.trim_matches('`')
                .trim_start_matches("or `")
                .trim_end_matches('`')
        })
        .collect();
    match nearest(&c[2], &known) {
        Some(k) => format!("unknown {} `{}` (did you mean `{k}`?)", &c[1], &c[2]),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_name_and_strangers_do_not() {
        let known = ["aws", "azure", "local", "postgresql", "dns"];
        assert_eq!(nearest("asw", &known), Some("aws"));
        assert_eq!(nearest("postgres", &known), Some("postgresql"));
        assert_eq!(nearest("Azrue", &known), Some("azure"));
        assert_eq!(nearest("kubernetes", &known), None);
        assert_eq!(
            unknown("provider", "asw", &known),
            "unknown provider `asw` (did you mean `aws`?)"
        );
    }
}
