//! Which dataset files a server reads: only those under the directories it was given
//! (`gradlab serve --data-dir`). Anyone who can submit a job names a path; without this check
//! `csv:/etc/passwd` would be read by the server, and its parse errors would quote it back.
//!
//! A path is judged twice. First by its text alone (made absolute against the server's working
//! directory, `.` and `..` folded): outside every allowed directory it is refused before the
//! file system is asked anything, so refusals cannot be used to learn which files exist. Then by
//! its real location (symbolic links and `..` resolved by the file system), which must still be
//! inside an allowed directory: a link inside a data directory to a file outside is refused.
//! The check runs when a job is submitted and again when it starts, so a job queued under a
//! wider policy (before a restart) does not read what the new one forbids.

use std::path::{Component, Path, PathBuf};

use super::RunnerError;
use super::limits::thousands;
use crate::engine::data::DatasetSpec;
use crate::engine::spec::FieldError;

#[derive(Clone, Debug)]
struct AllowedDir {
    /// As given, made absolute and folded: what a client's path is compared with first.
    given: PathBuf,
    /// Where it really is (links resolved).
    real: PathBuf,
}

/// The directories dataset files may be read from; empty (the default) allows no files, only
/// the built-in and generated datasets.
#[derive(Clone, Debug, Default)]
pub struct DataPolicy {
    dirs: Vec<AllowedDir>,
}

impl DataPolicy {
    /// Allows the files under `dirs`. Each must be an existing directory; the error names it.
    pub fn allow(dirs: &[PathBuf]) -> Result<DataPolicy, String> {
        let cwd = std::env::current_dir().map_err(|e| format!("cannot read the working directory: {e}"))?;
        let dirs = dirs
            .iter()
            .map(|d| {
                let real = d.canonicalize().map_err(|e| format!("--data-dir {}: {e}", d.display()))?;
                if !real.is_dir() {
                    return Err(format!("--data-dir {}: not a directory", d.display()));
                }
                Ok(AllowedDir { given: fold(&cwd.join(d)), real })
            })
            .collect::<Result<_, _>>()?;
        Ok(DataPolicy { dirs })
    }

    /// The allowed directories, resolved.
    pub fn dirs(&self) -> Vec<&Path> {
        self.dirs.iter().map(|d| d.real.as_path()).collect()
    }

    /// Checks every file of the dataset: allowed, a regular file, at most `max_bytes` on disk.
    pub fn check(&self, dataset: &DatasetSpec, max_bytes: u64) -> Result<(), RunnerError> {
        dataset.paths().into_iter().try_for_each(|p| self.check_file(p, max_bytes))
    }

    fn check_file(&self, path: &Path, max_bytes: u64) -> Result<(), RunnerError> {
        let shown = path.display();
        if self.dirs.is_empty() {
            return Err(RunnerError::PermissionDenied(format!(
                "dataset: {shown}: this server reads no dataset files; its operator can allow a directory with \
                 `gradlab serve --data-dir DIR`"
            )));
        }
        let outside = |what: &str| {
            let dirs = self.dirs.iter().map(|d| d.real.display().to_string()).collect::<Vec<_>>().join(", ");
            RunnerError::PermissionDenied(format!(
                "dataset: {shown} {what} outside the directories this server reads ({dirs}, set with --data-dir)"
            ))
        };
        let cwd = std::env::current_dir().map_err(|e| RunnerError::FailedPrecondition(e.to_string()))?;
        let absolute = cwd.join(path);
        let folded = fold(&absolute);
        if !self.dirs.iter().any(|d| folded.starts_with(&d.given) || folded.starts_with(&d.real)) {
            return Err(outside("is"));
        }
        let invalid = |problem: String| RunnerError::Invalid(FieldError::new("dataset", problem));
        let real = absolute.canonicalize().map_err(|e| invalid(format!("cannot read {shown}: {e}")))?;
        if !self.dirs.iter().any(|d| real.starts_with(&d.real)) {
            return Err(outside("leads (through a symbolic link)"));
        }
        let meta = real.metadata().map_err(|e| invalid(format!("cannot read {shown}: {e}")))?;
        // A FIFO or device would block or never end; only plain files are read.
        if !meta.is_file() {
            return Err(invalid(format!("{shown} is not a regular file")));
        }
        if meta.len() > max_bytes {
            return Err(invalid(format!(
                "{shown} is {} bytes, more than this server's --max-dataset-bytes {}",
                thousands(meta.len()),
                thousands(max_bytes)
            )));
        }
        Ok(())
    }
}

/// Folds `.` and `..` by the text alone (`/a/b/../c` is `/a/c`); the path must be absolute.
fn fold(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
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

    fn csv(path: &Path) -> DatasetSpec {
        format!("csv:{}", path.display()).parse().unwrap()
    }

    fn denied(r: Result<(), RunnerError>) -> String {
        match r {
            Err(RunnerError::PermissionDenied(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn folding_is_textual() {
        assert_eq!(fold(Path::new("/a/b/../c/./d")), PathBuf::from("/a/c/d"));
        assert_eq!(fold(Path::new("/../..")), PathBuf::from("/"));
    }

    #[test]
    fn only_files_under_the_allowed_directories_are_read() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("ok.csv"), "1,0\n").unwrap();
        std::fs::write(root.path().join("secret.csv"), "1,0\n").unwrap();
        std::os::unix::fs::symlink(root.path().join("secret.csv"), data.join("link.csv")).unwrap();

        assert!(denied(DataPolicy::default().check(&csv(&data.join("ok.csv")), 1000)).contains("--data-dir DIR"));
        let policy = DataPolicy::allow(std::slice::from_ref(&data)).unwrap();
        policy.check(&csv(&data.join("ok.csv")), 1000).unwrap();
        policy.check(&DatasetSpec::Digits, 0).unwrap();
        let m = denied(policy.check(&csv(Path::new("/etc/passwd")), 1000));
        assert!(m.starts_with("dataset: /etc/passwd is outside"), "{m}");
        denied(policy.check(&csv(&data.join("../secret.csv")), 1000));
        let m = denied(policy.check(&csv(&data.join("link.csv")), 1000));
        assert!(m.contains("symbolic link"), "{m}");
        // Outside and missing: refused without looking, so the refusal tells nothing.
        denied(policy.check(&csv(&root.path().join("nope.csv")), 1000));
        // Inside and missing: an ordinary bad field.
        let e = policy.check(&csv(&data.join("nope.csv")), 1000).unwrap_err();
        assert!(matches!(&e, RunnerError::Invalid(f) if f.field == "dataset"), "{e:?}");
        let e = policy.check(&csv(&data.join("ok.csv")), 2).unwrap_err().to_string();
        assert!(e.contains("is 4 bytes, more than this server's --max-dataset-bytes 2"), "{e}");
        assert!(DataPolicy::allow(&[root.path().join("missing")]).unwrap_err().starts_with("--data-dir"));
    }
}
