//! Links the `umlrun` binary as a fixed-address (non-PIE) executable, and
//! keeps `target/release/<tool>` naming the tools.
//!
//! A PIE's loader patches every pointer in .data.rel.ro at start, which
//! turns those ~260 KB into private anonymous memory in every instance; at a
//! fixed address the linker resolves them and the pages stay clean file
//! pages that all instances share through the host page cache. The link
//! is also static (`.cargo/config.toml`: crt-static, relocation-model
//! static), so there is no loader or shared libc to dirty pages either.
//!
//! Naming the target there moves the binaries to
//! `target/x86_64-unknown-linux-gnu/<profile>/`; `target/<profile>/` still
//! exists (cargo builds host tools there), and a link per tool in it keeps
//! the old paths working for scripts and habits outside this repository.
use std::path::{Path, PathBuf};

const TOOLS: [&str; 4] = ["umlrun", "umlcow", "umlctl", "umlbalance"];

fn main() {
    println!("cargo:rustc-link-arg-bin=umlrun=-no-pie");
    println!("cargo:rerun-if-changed=build.rs");
    if let Err(e) = link_old_paths() {
        println!("cargo:warning=target/<profile>/ links to the tools not made: {e}");
    }
}

/// OUT_DIR is <target>/<triple>/<profile>/build/<pkg>-<hash>/out: the
/// binaries land in <target>/<triple>/<profile>/, the links go in
/// <target>/<profile>/ (only when a triple folder is there).
fn link_old_paths() -> std::io::Result<()> {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let Some(bins) = out.ancestors().nth(3) else {
        return Ok(());
    };
    let (Some(profile), Some(triple_dir)) = (bins.file_name(), bins.parent()) else {
        return Ok(());
    };
    let triple = triple_dir
        .file_name()
        .and_then(|t| t.to_str())
        .unwrap_or("");
    if std::env::var("TARGET").ok().as_deref() != Some(triple) {
        return Ok(()); // no triple folder: the binaries are in target/<profile> already
    }
    let Some(target) = triple_dir.parent() else {
        return Ok(());
    };
    let old = target.join(profile);
    std::fs::create_dir_all(&old)?;
    for tool in TOOLS {
        let link = old.join(tool);
        let to = Path::new("..").join(triple).join(profile).join(tool);
        if std::fs::read_link(&link).ok().as_deref() == Some(to.as_path()) {
            continue;
        }
        // A binary of an older, dynamically linked build, or a stale link.
        if link.symlink_metadata().is_ok() {
            std::fs::remove_file(&link)?;
        }
        std::os::unix::fs::symlink(&to, &link)?;
    }
    Ok(())
}
