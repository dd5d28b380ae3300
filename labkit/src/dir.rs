//! A scratch directory for configs and logs.

use std::path::{Path, PathBuf};

use crate::error::{io, Result};

/// A directory removed on drop — kept (and its path printed) when the
/// thread panics, so the logs stay for the post-mortem, or when
/// [`ScratchDir::keep`] is set.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
    keep: bool,
}

impl ScratchDir {
    /// Create `path` afresh (a stale one from an earlier run is removed).
    pub fn create(path: impl Into<PathBuf>) -> Result<ScratchDir> {
        let path = path.into();
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).map_err(io(format!("create {}", path.display())))?;
        Ok(ScratchDir { path, keep: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `PATH/name`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Keep the directory (or not) when this value is dropped.
    pub fn keep(&mut self, keep: bool) {
        self.keep = keep;
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if std::thread::panicking() {
            eprintln!("files kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_on_drop_unless_kept() {
        let base = std::env::temp_dir().join(format!("labkit-dir-{}", std::process::id()));
        let d = ScratchDir::create(base.join("a")).unwrap();
        std::fs::write(d.file("x.log"), "x").unwrap();
        let a = d.path().to_path_buf();
        drop(d);
        assert!(!a.exists());

        let mut d = ScratchDir::create(base.join("b")).unwrap();
        d.keep(true);
        let b = d.path().to_path_buf();
        drop(d);
        assert!(b.exists());
        // Created afresh: the stale file is gone.
        std::fs::write(b.join("stale"), "").unwrap();
        let d = ScratchDir::create(&b).unwrap();
        assert!(!d.file("stale").exists());
        drop(d);
        let _ = std::fs::remove_dir_all(base);
    }
}
