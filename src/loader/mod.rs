//! Program loading, pure logic: what to map where and what the new stack
//! holds. The kernel reads the file, maps the plan, writes the stack image.
//!
//! | file | owns |
//! |---|---|
//! | `elf.rs` | ELF64 header and program header parsing with checked bounds |
//! | `plan.rs` | load plans: segments with bias, bss, entry, AT_PHDR, interpreter |
//! | `script.rs` | `#!` line parsing |
//! | `stack.rs` | the initial stack image: argv, envp, auxv, strings, alignment |
//!
//! Every malformed input is `Errno::ENOEXEC` (or E2BIG/EINVAL for the
//! stack), never a panic.
#![deny(unsafe_code)]

pub mod elf;
pub mod plan;
pub mod script;
pub mod stack;

pub use elf::{ElfFile, ElfKind, ElfSegment};
pub use plan::{LoadPlan, LoadSegment};
pub use script::{parse_shebang, Shebang};
pub use stack::{build_stack, AuxInfo, StackImage, StackSpec};

/// Guest page size.
pub const PAGE_SIZE: u64 = crate::abi::PAGE;
pub use crate::platform::TASK_SIZE;

pub(crate) fn page_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

pub(crate) fn page_up(x: u64) -> Option<u64> {
    x.checked_add(PAGE_SIZE - 1).map(page_down)
}
