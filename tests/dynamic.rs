//! Dynamically linked programs: the ELF loader maps the program and its
//! PT_INTERP (ld.so), which then loads libc with mmap. A glibc program
//! built with plain `gcc` runs in the guest from an image holding it, its
//! interpreter and libc, and prints what it prints natively.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::*;

const PROGRAM: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
int main(int argc, char **argv) {
    char *p = malloc(1 << 20);
    memset(p, 7, 1 << 20);
    printf("dynamic: argc %d, heap ok %d, argv0 ends in dyn %d\n", argc, p[12345] == 7,
           strcmp(argv[0] + strlen(argv[0]) - 3, "dyn") == 0);
    return 5;
}
"#;

fn sh(cmd: &mut Command) {
    let out = cmd.output().expect("run a build tool");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Copies a host file into the image tree at the same path.
fn add(root: &Path, host: &str) {
    let dst = root.join(host.trim_start_matches('/'));
    fs::create_dir_all(dst.parent().unwrap()).unwrap();
    fs::copy(host, &dst).unwrap_or_else(|e| panic!("copy {host}: {e}"));
}

#[test]
fn dynamically_linked_glibc_program_runs_like_natively() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    fs::create_dir_all(root.join("bin")).unwrap();
    let src = tmp.path().join("dyn.c");
    fs::write(&src, PROGRAM).unwrap();
    let bin = root.join("bin/dyn");
    sh(Command::new("gcc").args(["-O1", "-o"]).arg(&bin).arg(&src));
    // The interpreter and libc, where the program looks for them.
    let libc = fs::canonicalize("/lib/x86_64-linux-gnu/libc.so.6").unwrap();
    add(&root, "/lib64/ld-linux-x86-64.so.2");
    let libc_dst = root.join("lib/x86_64-linux-gnu/libc.so.6");
    fs::create_dir_all(libc_dst.parent().unwrap()).unwrap();
    fs::copy(&libc, &libc_dst).unwrap();
    fs::create_dir_all(root.join("dev")).unwrap();
    let image = tmp.path().join("dyn.img");
    sh(Command::new("mke2fs")
        .args(["-q", "-t", "ext2", "-b", "4096", "-d"])
        .arg(&root)
        .arg(&image)
        .arg("32M"));

    let native = run_native(&bin, &[], timeout());
    let native_status = native.expect_finished("dyn (native)");
    assert_eq!(native_status, 5);
    for mode in ["copy", "mmap"] {
        let guest = run_guest_with(
            &image,
            "/bin/dyn",
            &GuestOptions {
                extra: vec![format!("ubd={mode}")],
                ..GuestOptions::default()
            },
        );
        let status = guest.expect_finished(&format!("dyn in the guest ({mode})"));
        assert_eq!(status, 5, "ubd={mode}: {}", guest.tail(20));
        assert_eq!(
            guest.stdout,
            native.stdout,
            "ubd={mode}\n{}",
            diff(&native.stdout, &guest.stdout)
        );
    }
}
