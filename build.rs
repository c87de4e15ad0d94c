//! Links the `umlrun` binary as a fixed-address (non-PIE) executable.
//!
//! A PIE's loader patches every pointer in .data.rel.ro at start, which
//! turns those ~260 KB into private anonymous memory in every instance; at a
//! fixed address the linker resolves them and the pages stay clean file
//! pages that all instances share through the host page cache. The link
//! is also static (`.cargo/config.toml`: crt-static, relocation-model
//! static), so there is no loader or shared libc to dirty pages either.
fn main() {
    println!("cargo:rustc-link-arg-bin=umlrun=-no-pie");
    println!("cargo:rerun-if-changed=build.rs");
}
