//! The virtual file system: mounts, path walk, permissions and open files.
//!
//! | file        | owns |
//! |-------------|------|
//! | `mount.rs`  | the mount table: which file system is where |
//! | `walk.rs`   | path resolution from the caller's root (chroot) and cwd: `.`/`..`, symlinks (depth-limited), mount crossing |
//! | `perm.rs`   | credentials and mode-bit permission checks |
//! | `dentry.rs` | directory references (cwd, root, open directories) kept true across rename and rmdir; paths as a root sees them |
//! | `locks.rs`  | advisory locks on one inode: record-lock ranges (split, merge, conflict), flock, leases |
//! | `file.rs`   | open file descriptions and the `FileDescription` trait their kinds implement (kinds: `kernel/files/`) |
//! | `writecount.rs` | write access per inode (Linux's i_writecount): writers' and running programs' tokens, ETXTBSY |
//!
//! A location is a `Node` (mount, inode) plus its canonical absolute path;
//! `..` is resolved on the path, never on the disk, so a corrupt `..`
//! entry cannot send the walk astray.

#![deny(unsafe_code)]

pub mod dentry;
pub mod file;
pub mod locks;
pub mod mount;
pub mod perm;
pub mod walk;
pub mod writecount;

pub use dentry::{Dentry, DentryRef, DentryTable};
pub use file::{FileDescription, OpenFile, OpenFileRef};
pub use mount::{MountId, MountTable, Node};
pub use perm::Cred;
pub use walk::{Lookup, Resolved};
