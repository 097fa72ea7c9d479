//! The built-in module and tier library, embedded in the binary from `modules/` and `plans/`.

use include_dir::{include_dir, Dir};

static MODULES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/modules");
static PLANS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/plans");

/// The text of a built-in tier, if one has this name.
pub fn tier(name: &str) -> Option<&'static str> {
    PLANS
        .get_file(format!("{name}.yaml"))
        .and_then(|f| f.contents_utf8())
}

/// Names of the built-in tiers.
pub fn tier_names() -> Vec<String> {
    let mut v: Vec<String> = PLANS
        .files()
        .filter_map(|f| f.path().to_str()?.strip_suffix(".yaml").map(str::to_string))
        .collect();
    v.sort();
    v
}

/// The files of a built-in module (`(file name, text)`), if one has this name.
pub fn module(name: &str) -> Option<Vec<(String, &'static str)>> {
    let dir = MODULES.get_dir(name)?;
    let mut files: Vec<(String, &'static str)> = dir
        .files()
        .filter_map(|f| {
            Some((
                f.path().file_name()?.to_str()?.to_string(),
                f.contents_utf8()?,
            ))
        })
        .collect();
    files.sort();
    Some(files)
}

/// A stable digest of the whole built-in library, so a binary upgrade that changes it
/// invalidates saved plans.
pub fn digest() -> &'static str {
    static DIGEST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIGEST.get_or_init(compute_digest)
}

fn compute_digest() -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    fn walk(d: &Dir<'_>, h: &mut Sha256) {
        for f in d.files() {
            h.update(f.path().to_string_lossy().as_bytes());
            h.update(f.contents());
        }
        for sub in d.dirs() {
            walk(sub, h);
        }
    }
    walk(&MODULES, &mut h);
    walk(&PLANS, &mut h);
    hex::encode(h.finalize())
}
