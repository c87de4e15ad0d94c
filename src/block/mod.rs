//! UML COW files and the `ubd` block devices (copy and mmap modes).
//!
//! | file        | owns |
//! |-------------|------|
//! | `cow/header.rs` | the COW header: parse v1/v2/v3/broken v3, write v3, layout sizes |
//! | `cow/mod.rs`    | create a COW file, read its header and bitmap, check the backing file |
//! | `cow/confine.rs` | which backing file a COW header may name (`cow_backing=beside|named|any`) |
//! | `bitmap.rs`     | the in-memory sector bitmap (LSB first) |
//! | `ubd.rs`        | `Ubd`: a raw or COW disk read/written by byte range; page mappings for mmap mode |
//! | `bdev.rs`       | an open /dev/ubdX: reads/writes of any alignment, lseek, flush, discard, zero-out, the block ioctls |
//! | `disks.rs`      | the guest's disk table: names (`ubda`…), device numbers (98, 16·n), exclusive holders, /proc/partitions |
//! | `merge.rs`      | COW + backing -> one image (`uml_moo`), or in place; a header-named backing under `cow_backing=` |
//! | `error.rs`      | `BlockError` |
#![deny(unsafe_code)]

pub mod bdev;
pub mod bitmap;
pub mod cow;
pub mod disks;
pub mod error;
pub mod merge;
pub mod ubd;

pub use disks::{DiskTable, Holder};
pub use error::BlockError;
pub use ubd::{PageMapping, Ubd};
