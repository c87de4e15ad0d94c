//! Which backing file a COW header may make umlrun open (`cow_backing=`).
//!
//! A COW file names its backing file by host path, and UML opens whatever
//! that is (arch/um/drivers/ubd_kern.c, `open_ubd_file`: the header's path
//! unless the command line names another; it never confines it). A COW file
//! from someone else could so name another tenant's image, or any file the
//! user running umlrun can read. umlrun opens a backing file named only by
//! the header when the policy allows it:
//!
//! - `beside` (the default): a file in the COW file's own directory (the
//!   directories compared after resolving them; the name itself may be a
//!   link, put there by whoever owns that directory);
//! - `named`: none; the backing file must be given on the command line;
//! - `any`: whatever the header names, as UML does.
//!
//! A backing file named on the command line (`ubd0=cow,backing`) is always
//! allowed: the user named it. A refusal reveals nothing about the file
//! the header names: it is decided before that file is looked at.

use std::path::Path;

use super::super::error::BlockError;
use crate::host::file as hf;

/// The `cow_backing=` policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackingPolicy {
    #[default]
    Beside,
    Named,
    Any,
}

impl BackingPolicy {
    pub fn parse(s: &str) -> Option<BackingPolicy> {
        match s {
            "beside" => Some(BackingPolicy::Beside),
            "named" => Some(BackingPolicy::Named),
            "any" => Some(BackingPolicy::Any),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BackingPolicy::Beside => "beside",
            BackingPolicy::Named => "named",
            BackingPolicy::Any => "any",
        }
    }
}

/// Ok when `policy` lets COW file `cow` open `backing`, the path its
/// header names (relative paths are taken from the current directory,
/// as they are opened).
pub fn check(policy: BackingPolicy, cow: &Path, backing: &Path) -> Result<(), BlockError> {
    let allowed = match policy {
        BackingPolicy::Any => true,
        BackingPolicy::Named => false,
        BackingPolicy::Beside => beside(cow, backing),
    };
    if allowed {
        return Ok(());
    }
    Err(BlockError::BackingNotAllowed {
        cow: cow.to_path_buf(),
        backing: backing.to_path_buf(),
        policy: policy.name(),
    })
}

/// `backing` names a file (not `.` or `..`) in `cow`'s directory.
fn beside(cow: &Path, backing: &Path) -> bool {
    let dir = |p: &Path| {
        hf::absolute_path(p)
            .ok()
            .and_then(|a| a.parent().map(Path::to_path_buf))
    };
    // absolute_path refuses a path with no file name ("/", "x/.."); a
    // name "." would name the directory itself.
    if backing.file_name().is_none_or(|n| n == ".") {
        return false;
    }
    matches!((dir(cow), dir(backing)), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beside_means_the_cow_files_directory() {
        let d = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        let cow = d.path().join("a.cow");
        let ok = |b: &Path| check(BackingPolicy::Beside, &cow, b).is_ok();
        assert!(ok(&d.path().join("base.img")));
        assert!(ok(&d.path().join("sub/../base.img")));
        // Missing files beside it are allowed here; opening them fails later.
        assert!(ok(&d.path().join("missing.img")));
        assert!(!ok(&other.path().join("base.img")));
        assert!(!ok(&d.path().join("sub/base.img")));
        assert!(!ok(Path::new("/etc/passwd")));
        assert!(!ok(&d.path().join("sub/..")));
        assert!(!ok(&d.path().join(".")));
        assert!(!ok(Path::new("/nonexistent-dir/x.img")));
        // A directory link beside the COW is resolved: its files are not beside.
        std::os::unix::fs::symlink(other.path(), d.path().join("link")).unwrap();
        assert!(!ok(&d.path().join("link/base.img")));
    }

    #[test]
    fn named_and_any() {
        let cow = Path::new("/tmp/x.cow");
        let b = Path::new("/tmp/x.img");
        assert!(check(BackingPolicy::Named, cow, b).is_err());
        assert!(check(BackingPolicy::Any, cow, Path::new("/etc/shadow")).is_ok());
        let e = check(BackingPolicy::Named, cow, Path::new("/secret/y.img")).unwrap_err();
        let text = e.to_string();
        assert!(!text.contains('\n'), "one line: {text}");
        assert!(text.contains("cow_backing=named"), "{text}");
        for p in ["beside", "named", "any"] {
            assert_eq!(BackingPolicy::parse(p).unwrap().name(), p);
        }
        assert_eq!(BackingPolicy::parse("x"), None);
    }
}
