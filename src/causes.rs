//! An error's text with the texts of its causes, for messages that must say why (the
//! drivers' own texts often leave the cause out).

/// An error's text followed by each of its causes (`: cause`) not already in it: transport
/// errors keep the endpoint and the OS error ("Connection refused") in their sources.
pub fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(&format!(": {c_text}"));
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn causes_follow_once() {
        let inner = std::io::Error::new(std::io::ErrorKind::Other, "connection refused");
        let outer = std::io::Error::new(std::io::ErrorKind::Other, inner);
        assert_eq!(super::with_causes(&outer), "connection refused");
        let e = tera::Error::chain("rendering `a`", tera::Error::msg("undefined `x`"));
        assert_eq!(super::with_causes(&e), "rendering `a`: undefined `x`");
    }
}
