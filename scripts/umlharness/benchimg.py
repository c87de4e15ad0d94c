"""The benchmark guest: compiles tests/guest/b_*.c (gcc -static -O2) into a
staged root tree and makes an ext2 image of it.

    target/bench/root/bench/b_*      the programs (natively run from here too)
    target/bench/root/bench/big      64 MiB of random bytes (sequential reads)
    target/bench/root/bench/rand     64 MiB of random bytes (random reads)
    target/bench/bench.img           ext2, 4 KiB blocks, that root + /dev nodes

Random bytes, because mke2fs -d leaves zero blocks out as holes. Idempotent:
a program is compiled when its source is newer, the image built when any
staged file is newer than it.
"""

import os
import subprocess
from pathlib import Path

from .runners import REPO

SRC = REPO / "tests" / "guest"
OUT = REPO / "target" / "bench"
ROOT = OUT / "root"
BENCH_DIR = ROOT / "bench"
IMAGE = OUT / "bench.img"
IMAGE_SIZE = "192M"
DATA_FILES = ("big", "rand")
DATA_BYTES = 64 << 20
# name type major minor mode, as in scripts/build-guest-tests
DEV_NODES = """console c 5 1 600
tty c 5 0 666
null c 1 3 666
zero c 1 5 666
ubda b 98 0 660"""
ENV = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


class BenchImageError(Exception):
    """The programs or the image could not be built."""


def _run(cmd, what):
    done = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    if done.returncode != 0:
        raise BenchImageError(f"{what}: {' '.join(map(str, cmd))}: exit {done.returncode}\n"
                              f"{done.stdout}{done.stderr}")


def _newer(src, out):
    return not out.exists() or src.stat().st_mtime > out.stat().st_mtime


def build_programs(log=print):
    """Compile every tests/guest/b_*.c into target/bench/root/bench/; returns
    the program names. b_true is -nostdlib (it is only an exec target)."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    names, built = [], 0
    for src in sorted(SRC.glob("b_*.c")):
        name = src.stem
        out = BENCH_DIR / name
        names.append(name)
        if not _newer(src, out):
            continue
        flags = ["-static", "-O2", "-Wall", "-Werror"]
        if name == "b_true":
            flags += ["-nostdlib"]
        _run(["gcc", *flags, "-o", f"{out}.tmp", str(src)], f"compiling {src.name}")
        os.replace(f"{out}.tmp", out)
        built += 1
    if not names:
        raise BenchImageError(f"no b_*.c in {SRC}")
    for data in DATA_FILES:
        path = BENCH_DIR / data
        if not path.exists() or path.stat().st_size != DATA_BYTES:
            with open("/dev/urandom", "rb") as rnd, open(f"{path}.tmp", "wb") as f:
                for _ in range(DATA_BYTES >> 20):
                    f.write(rnd.read(1 << 20))
            os.replace(f"{path}.tmp", path)
            built += 1
    log(f"bench programs: {len(names)} in {BENCH_DIR.relative_to(REPO)} ({built} rebuilt)")
    return names


def build_image(log=print):
    """Build target/bench/bench.img from the staged root if it is stale."""
    staged = [p for p in BENCH_DIR.iterdir() if not p.name.endswith(".tmp")]
    if IMAGE.exists() and not any(_newer(p, IMAGE) for p in staged) \
            and not _newer(Path(__file__), IMAGE):
        log(f"{IMAGE.relative_to(REPO)} is up to date")
        return IMAGE
    for d in ("dev", "proc", "tmp", "root", "etc"):
        (ROOT / d).mkdir(exist_ok=True)
    (ROOT / "etc" / "hostname").write_text("umlrun-bench\n")
    tmp = OUT / "bench.img.tmp"
    _run(["mke2fs", "-q", "-F", "-t", "ext2", "-b", "4096", "-L", "umlrun-bench",
          "-E", "root_owner=0:0", "-d", str(ROOT), str(tmp), IMAGE_SIZE], "mke2fs")
    cmds = ["cd /dev"]
    for line in DEV_NODES.splitlines():
        name, typ, major, minor, mode = line.split()
        cmds.append(f"mknod {name} {typ} {major} {minor}")
        cmds.append(f"sif /dev/{name} mode {'020' if typ == 'c' else '060'}{mode}")
    script = OUT / "fixup.debugfs"
    script.write_text("\n".join(cmds) + "\n")
    _run(["debugfs", "-w", "-f", str(script), str(tmp)], "debugfs (device nodes)")
    _run(["e2fsck", "-fn", str(tmp)], "e2fsck -fn of the new image")
    os.replace(tmp, IMAGE)
    log(f"built {IMAGE.relative_to(REPO)}: ext2, 4 KiB blocks, {IMAGE_SIZE}")
    return IMAGE


def build_all(log=print):
    """Programs, then the image; returns the image path."""
    build_programs(log)
    return build_image(log)
