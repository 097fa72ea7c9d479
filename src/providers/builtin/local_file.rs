//! `local_file`: a file under the workspace (or the configured root), written atomically.

use async_trait::async_trait;

use super::{Builtin, BATCH};
use crate::providers::{
    ApplyRequest, DeleteRequest, PlanRequest, PlanResponse, ReadRequest, RecoverRequest,
    ResourceType,
};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::providers::attrs::{opt_str, req_str};
use crate::providers::{ApplyResponse, AttrSchema, ProviderError, ResourceSchema};
use crate::value::Attrs;

pub(super) fn schema() -> ResourceSchema {
    ResourceSchema {
        type_name: "local_file",
        attributes: vec![
            AttrSchema::required("filename").force_new(),
            AttrSchema::required("content"),
            AttrSchema::optional("file_permission"),
            AttrSchema::optional("directory_permission"),
            AttrSchema::computed("content_sha256"),
        ],
    }
}

/// The provider id of a file: the hash of its content.
pub(super) fn id(attrs: &Attrs) -> String {
    attrs
        .get("content_sha256")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn mode(c: &Attrs, key: &str, default: u32) -> Result<u32, ProviderError> {
    match opt_str(c, key)? {
        None => Ok(default),
        Some(s) => u32::from_str_radix(s, 8)
            .ok()
            .filter(|m| *m <= 0o7777 && s.len() == 4)
            .ok_or_else(|| {
                ProviderError::invalid(format!(
                    "`{key}` must be four octal digits like \"0644\", got `{s}`"
                ))
            }),
    }
}

/// File operations confined to a root directory.
pub(super) struct Files {
    /// The workspace: file names are relative to it.
    pub(super) workspace: PathBuf,
    /// Files may not leave this directory.
    root: PathBuf,
    /// The root as written, normalized; and its real path, resolved once.
    normal_root: PathBuf,
    real_root: std::sync::Mutex<Option<PathBuf>>,
    /// The real path of each existing directory checked so far (a fleet's files share
    /// few directories).
    real_dirs: std::sync::Mutex<std::collections::HashMap<PathBuf, Option<PathBuf>>>,
}

impl Files {
    pub(super) fn new(workspace: PathBuf, root: PathBuf) -> Self {
        Files {
            workspace,
            normal_root: normalize(&root),
            root,
            real_root: Default::default(),
            real_dirs: Default::default(),
        }
    }

    /// The real path of the nearest existing directory at or above `dir`, cached.
    fn real_dir(&self, dir: &Path) -> Option<PathBuf> {
        let mut cache = self.real_dirs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = cache.get(dir) {
            return r.clone();
        }
        let mut existing = Some(dir.to_path_buf());
        let mut real = None;
        while let Some(p) = existing {
            if p.exists() {
                real = p.canonicalize().ok();
                break;
            }
            existing = p.parent().map(Path::to_path_buf);
        }
        cache.insert(dir.to_path_buf(), real.clone());
        real
    }

    /// The absolute path of `filename`, refused when it escapes the root.
    fn path(&self, filename: &str) -> Result<PathBuf, ProviderError> {
        let escape = || {
            ProviderError::invalid(format!(
                "`filename` `{filename}` escapes the workspace root `{}`",
                self.root.display()
            ))
        };
        let rel = Path::new(filename);
        if rel.is_absolute() || filename.is_empty() {
            return Err(escape());
        }
        let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
        for c in rel.components() {
            match c {
                Component::Normal(p) => parts.push(p),
                Component::CurDir => {}
                Component::ParentDir => {
                    parts.pop().ok_or_else(escape)?;
                }
                _ => return Err(escape()),
            }
        }
        let full: PathBuf = parts.iter().fold(self.workspace.clone(), |p, c| p.join(c));
        if !normalize(&full).starts_with(&self.normal_root) || parts.is_empty() {
            return Err(escape());
        }
        // A symlinked directory must not lead outside either.
        // Resolved once it exists (apply creates it).
        let real_root = {
            let mut r = self.real_root.lock().unwrap_or_else(|e| e.into_inner());
            if r.is_none() {
                *r = self.root.canonicalize().ok();
            }
            r.clone()
        };
        if let (Some(dir), Some(real_root)) = (full.parent(), real_root) {
            if let Some(real) = self.real_dir(dir) {
                if !real.starts_with(real_root) {
                    return Err(escape());
                }
            }
        }
        Ok(full)
    }

    pub(super) fn validate(&self, c: &Attrs) -> Result<(), ProviderError> {
        if let Some(Value::String(f)) = c.get("filename") {
            if f != crate::value::UNKNOWN {
                self.path(f)?;
            }
        }
        mode(c, "file_permission", 0o644)?;
        mode(c, "directory_permission", 0o755)?;
        Ok(())
    }

    pub(super) fn write(&self, c: &Attrs) -> Result<ApplyResponse, ProviderError> {
        let filename = req_str(c, "filename")?;
        let path = self.path(filename)?;
        let content = req_str(c, "content")?;
        let fmode = mode(c, "file_permission", 0o644)?;
        let dmode = mode(c, "directory_permission", 0o755)?;
        let io =
            |what: &str, e: std::io::Error| ProviderError::io(&format!("{what} `{filename}`"), &e);
        if let Some(dir) = path.parent() {
            if !dir.exists() {
                fs::create_dir_all(dir).map_err(|e| io("cannot create directory for", e))?;
                fs::set_permissions(dir, fs::Permissions::from_mode(dmode))
                    .map_err(|e| io("cannot set directory mode for", e))?;
            }
        }
        // Write to a temporary sibling with the final mode, then rename: readers and a
        // killed run see either the old or the new file, never a partial one.
        let tmp = tmp_path(&path);
        {
            let mut opts = fs::OpenOptions::new();
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, fmode);
            let mut f = opts
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(|e| io("cannot write", e))?;
            f.set_permissions(fs::Permissions::from_mode(fmode))
                .map_err(|e| io("cannot set mode of", e))?;
            f.write_all(content.as_bytes())
                .map_err(|e| io("cannot write", e))?;
            f.sync_all().map_err(|e| io("cannot sync", e))?;
        }
        fs::rename(&tmp, &path).map_err(|e| io("cannot move into place", e))?;
        let attrs = self.attrs(c, content, fmode);
        Ok(ApplyResponse {
            id: id(&attrs),
            attributes: attrs,
        })
    }

    fn attrs(&self, c: &Attrs, content: &str, fmode: u32) -> Attrs {
        let mut a = c.clone();
        a.insert("content".into(), json!(content));
        a.insert("file_permission".into(), json!(format!("{fmode:04o}")));
        a.insert(
            "content_sha256".into(),
            json!(hex::encode(Sha256::digest(content.as_bytes()))),
        );
        a
    }

    /// The file as it is on disk, or `None` when it is missing.
    pub(super) fn read(&self, prior: &Attrs) -> Result<Option<Attrs>, ProviderError> {
        let filename = req_str(prior, "filename")?;
        let path = self.path(filename)?;
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ProviderError::io(&format!("cannot read `{filename}`"), &e)),
        };
        let bytes = fs::read(&path)
            .map_err(|e| ProviderError::io(&format!("cannot read `{filename}`"), &e))?;
        let content = String::from_utf8_lossy(&bytes);
        let mut a = self.attrs(prior, &content, meta.permissions().mode() & 0o7777);
        if prior.get("directory_permission").is_none() {
            a.remove("directory_permission");
        }
        Ok(Some(a))
    }

    /// Removes the temporary file a killed write may have left behind.
    pub(super) fn clean_partial(&self, config: &Attrs) -> Result<(), ProviderError> {
        let filename = req_str(config, "filename")?;
        let tmp = tmp_path(&self.path(filename)?);
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ProviderError::io(
                &format!("cannot remove `{}`", tmp.display()),
                &e,
            )),
            _ => Ok(()),
        }
    }

    pub(super) fn delete(&self, prior: &Attrs) -> Result<(), ProviderError> {
        let filename = req_str(prior, "filename")?;
        let path = self.path(filename)?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ProviderError::io(
                    &format!("cannot delete `{filename}`"),
                    &e,
                ))
            }
        }
        // Directories below the root left empty go too (a retired tenant leaves no
        // `out/<tenant>/`); `remove_dir` refuses any that still holds something.
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| d.starts_with(&self.root) && *d != self.root) {
            if fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }
}

/// The temporary sibling a write goes through.
fn tmp_path(path: &Path) -> PathBuf {
    path.with_file_name(format!(
        ".{}.landlord-tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ))
}

/// Removes `.` and `..` lexically.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(v: Value) -> Attrs {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn writes_reads_and_deletes_with_mode() {
        let dir = tempfile::tempdir().unwrap();
        let f = Files::new(dir.path().to_path_buf(), dir.path().to_path_buf());
        let c =
            cfg(json!({"filename": "out/a.env", "content": "PW=x\n", "file_permission": "0600"}));
        f.write(&c).unwrap();
        let meta = fs::metadata(dir.path().join("out/a.env")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let read = f.read(&c).unwrap().unwrap();
        assert_eq!(read["content"], json!("PW=x\n"));
        f.delete(&c).unwrap();
        assert!(f.read(&c).unwrap().is_none());
        f.delete(&c).unwrap();
    }

    #[test]
    fn refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let f = Files::new(dir.path().to_path_buf(), dir.path().to_path_buf());
        for bad in ["../x", "/etc/passwd", "a/../../x", ""] {
            assert!(f.validate(&cfg(json!({"filename": bad}))).is_err(), "{bad}");
        }
        assert!(f.validate(&cfg(json!({"filename": "a/../b"}))).is_ok());
    }

    #[test]
    fn a_symlinked_directory_cannot_lead_outside_the_root() {
        let ws = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = ws.path().join("out");
        fs::create_dir_all(root.join("ok")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("evil")).unwrap();
        let f = Files::new(ws.path().to_path_buf(), root.clone());
        // Checked more than once: the answers are cached per directory.
        for _ in 0..2 {
            assert!(f.validate(&cfg(json!({"filename": "out/ok/a"}))).is_ok());
            assert!(f
                .validate(&cfg(json!({"filename": "out/ok/new/b"})))
                .is_ok());
            assert!(f.validate(&cfg(json!({"filename": "out/evil/a"}))).is_err());
            assert!(f
                .validate(&cfg(json!({"filename": "out/evil/deeper/a"})))
                .is_err());
        }
    }
}

/// `local_file`.
pub(super) struct LocalFile;

#[async_trait]
impl ResourceType<Builtin> for LocalFile {
    fn schema(&self) -> ResourceSchema {
        schema()
    }
    fn validate(&self, b: &Builtin, c: &Attrs) -> Result<(), ProviderError> {
        b.files.validate(c)
    }
    fn max_batch(&self) -> usize {
        BATCH
    }
    fn verify_after_apply(&self) -> bool {
        true
    }
    async fn plan(&self, _: &Builtin, req: &PlanRequest) -> Result<PlanResponse, ProviderError> {
        Ok(PlanResponse {
            changes_on_update: match req.prior {
                Some(_) => vec!["content_sha256".into()],
                None => vec![],
            },
            ..Default::default()
        })
    }
    async fn read(&self, b: &Builtin, req: &ReadRequest) -> Result<Option<Attrs>, ProviderError> {
        b.count("file.read");
        b.files.read(&req.prior)
    }
    async fn apply(&self, b: &Builtin, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        b.count("file.write");
        b.files.write(&req.config)
    }
    async fn delete(&self, b: &Builtin, req: &DeleteRequest) -> Result<(), ProviderError> {
        b.count("file.delete");
        b.files.delete(&req.prior)
    }
    /// A file may or may not have been written: adopt what is on disk, the next plan
    /// compares it with the desired content.
    async fn recover(
        &self,
        b: &Builtin,
        req: &RecoverRequest,
    ) -> Result<Option<ApplyResponse>, ProviderError> {
        b.count("file.read");
        b.files.clean_partial(&req.config)?;
        Ok(b.files.read(&req.config)?.map(|attrs| ApplyResponse {
            id: id(&attrs),
            attributes: attrs,
        }))
    }
}
