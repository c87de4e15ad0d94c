//! The instance directory `<uml_dir>/<umid>/` and its `pid` file, laid out
//! as UML lays them out (a directory per umid holding `pid`, the decimal pid
//! and a newline), so tools that look for UML instances find ours.
//!
//! `InstanceDir::claim` refuses a umid whose pid file names a live process,
//! clears a stale one, and the returned guard removes the directory when it
//! is dropped — on every exit path that unwinds or returns.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::host::misc::{current_pid, pid_alive};

/// Why an instance directory could not be claimed.
#[derive(Debug, Error)]
pub enum UmidError {
    #[error("umid={umid}: in use by live process {pid} (see {pid_file})")]
    InUse {
        umid: String,
        pid: u32,
        pid_file: PathBuf,
    },
    #[error("{path}: cannot create the instance directory: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("{path}: cannot remove the stale instance directory: {source}")]
    RemoveStale { path: PathBuf, source: io::Error },
    #[error("{path}: cannot write the pid file: {source}")]
    WritePid { path: PathBuf, source: io::Error },
}

/// A claimed `<uml_dir>/<umid>/`; dropping it removes the directory.
#[derive(Debug)]
pub struct InstanceDir {
    dir: PathBuf,
    pid_file: PathBuf,
    pid: u32,
}

impl InstanceDir {
    /// Claim `<uml_dir>/<umid>/` for this process.
    pub fn claim(uml_dir: &Path, umid: &str) -> Result<Self, UmidError> {
        Self::claim_with(uml_dir, umid, current_pid(), pid_alive)
    }

    /// Claim for `pid`, asking `alive` whether a recorded pid still runs.
    pub fn claim_with(
        uml_dir: &Path,
        umid: &str,
        pid: u32,
        alive: impl Fn(u32) -> bool,
    ) -> Result<Self, UmidError> {
        fs::create_dir_all(uml_dir).map_err(|source| UmidError::CreateDir {
            path: uml_dir.to_path_buf(),
            source,
        })?;
        let dir = uml_dir.join(umid);
        let pid_file = dir.join("pid");
        // Two tries: the second follows the removal of a stale directory.
        let mut tries = 0;
        loop {
            match fs::create_dir(&dir) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries == 0 => {
                    tries += 1;
                    let owner = read_pid(&pid_file);
                    if let Some(p) = owner.filter(|&p| p != pid && alive(p)) {
                        return Err(UmidError::InUse {
                            umid: umid.to_string(),
                            pid: p,
                            pid_file,
                        });
                    }
                    log::info!("removing stale {} (pid {:?})", dir.display(), owner);
                    remove_any(&dir).map_err(|source| UmidError::RemoveStale {
                        path: dir.clone(),
                        source,
                    })?;
                }
                Err(source) => {
                    return Err(UmidError::CreateDir {
                        path: dir.clone(),
                        source,
                    })
                }
            }
        }
        // From here on the guard owns the directory, so an error removes it.
        let guard = InstanceDir { dir, pid_file, pid };
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&guard.pid_file)
            .map_err(|source| UmidError::WritePid {
                path: guard.pid_file.clone(),
                source,
            })?;
        writeln!(f, "{pid}").map_err(|source| UmidError::WritePid {
            path: guard.pid_file.clone(),
            source,
        })?;
        Ok(guard)
    }

    /// `<uml_dir>/<umid>`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<uml_dir>/<umid>/pid`.
    pub fn pid_file(&self) -> &Path {
        &self.pid_file
    }
}

impl Drop for InstanceDir {
    fn drop(&mut self) {
        // Only our own directory: if someone replaced the pid file, leave it.
        if read_pid(&self.pid_file) != Some(self.pid) {
            log::warn!(
                "{} no longer holds our pid; left alone",
                self.pid_file.display()
            );
            return;
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            let emptied = fs::read_dir(&self.dir).is_ok_and(|mut d| d.next().is_none());
            if e.kind() == io::ErrorKind::PermissionDenied && emptied {
                // After uid=: the contents went, uml_dir is not ours to
                // change; the next run with this umid reuses the directory.
                log::info!(
                    "left the empty {} (uml_dir is not writable)",
                    self.dir.display()
                );
                return;
            }
            log::warn!("cannot remove {}: {e}", self.dir.display());
        }
    }
}

/// The pid in a pid file, if it holds one.
pub fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn remove_any(path: &Path) -> io::Result<()> {
    if path.is_dir() && !path.is_symlink() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

/// A six-character umid from random bytes, like the `XXXXXX` of UML's
/// `mkdtemp` default.
pub fn random_umid(random: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    random
        .iter()
        .take(6)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_writes_pid_and_drop_removes_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let uml_dir = tmp.path().join("nested/.uml");
        let g = InstanceDir::claim_with(&uml_dir, "web1", 4242, |_| false).unwrap();
        assert_eq!(g.dir(), uml_dir.join("web1"));
        assert_eq!(g.pid_file(), uml_dir.join("web1/pid"));
        assert_eq!(fs::read_to_string(g.pid_file()).unwrap(), "4242\n");
        drop(g);
        assert!(!uml_dir.join("web1").exists());
        assert!(uml_dir.exists());
    }

    #[test]
    fn live_owner_is_refused_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("web1")).unwrap();
        fs::write(tmp.path().join("web1/pid"), "777\n").unwrap();
        let e = InstanceDir::claim_with(tmp.path(), "web1", 1000, |p| p == 777).unwrap_err();
        assert!(matches!(e, UmidError::InUse { pid: 777, .. }), "{e:?}");
        assert!(e
            .to_string()
            .starts_with("umid=web1: in use by live process 777"));
        assert_eq!(read_pid(&tmp.path().join("web1/pid")), Some(777));
    }

    #[test]
    fn stale_dead_owner_is_cleaned() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("web1");
        fs::create_dir_all(d.join("mconsole-leftover")).unwrap();
        fs::write(d.join("pid"), "777\n").unwrap();
        let g = InstanceDir::claim_with(tmp.path(), "web1", 1000, |_| false).unwrap();
        assert_eq!(read_pid(g.pid_file()), Some(1000));
        assert!(!d.join("mconsole-leftover").exists());
    }

    #[test]
    fn garbage_or_missing_pid_file_is_stale() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("a")).unwrap();
        fs::write(tmp.path().join("a/pid"), "not a pid").unwrap();
        fs::create_dir_all(tmp.path().join("b")).unwrap();
        // A plain file where the directory should be is stale too.
        fs::write(tmp.path().join("c"), "").unwrap();
        for umid in ["a", "b", "c"] {
            let g = InstanceDir::claim_with(tmp.path(), umid, 5, |_| true).unwrap();
            assert_eq!(read_pid(g.pid_file()), Some(5));
        }
    }

    #[test]
    fn our_own_pid_is_not_a_rival() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("a")).unwrap();
        fs::write(tmp.path().join("a/pid"), "5\n").unwrap();
        assert!(InstanceDir::claim_with(tmp.path(), "a", 5, |_| true).is_ok());
    }

    #[test]
    fn real_liveness_check() {
        let tmp = tempfile::tempdir().unwrap();
        // This test process is alive: a pid file naming it is refused.
        fs::create_dir_all(tmp.path().join("live")).unwrap();
        fs::write(tmp.path().join("live/pid"), format!("{}\n", current_pid())).unwrap();
        let other = tmp.path().join("other");
        let g = InstanceDir::claim(&other, "x").unwrap();
        assert_eq!(read_pid(g.pid_file()), Some(current_pid()));
        drop(g);
        let e = InstanceDir::claim_with(tmp.path(), "live", current_pid() + 1, pid_alive);
        assert!(matches!(e, Err(UmidError::InUse { .. })));
    }

    #[test]
    fn drop_leaves_a_directory_that_is_no_longer_ours() {
        let tmp = tempfile::tempdir().unwrap();
        let g = InstanceDir::claim_with(tmp.path(), "a", 5, |_| false).unwrap();
        fs::write(g.pid_file(), "6\n").unwrap();
        drop(g);
        assert_eq!(read_pid(&tmp.path().join("a/pid")), Some(6));
    }

    #[test]
    fn uncreatable_uml_dir_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, "").unwrap();
        let e = InstanceDir::claim_with(&file.join("sub"), "a", 5, |_| false).unwrap_err();
        assert!(matches!(e, UmidError::CreateDir { .. }), "{e:?}");
    }

    #[test]
    fn random_umids() {
        let u = random_umid(&[0, 25, 26, 51, 52, 61, 99]);
        assert_eq!(u, "AZaz09");
        assert_eq!(random_umid(&[255; 6]).len(), 6);
    }
}
