"""The two runners: umlrun (ours) and Debian's linux.uml, and their COW tools.

Both take UML's switches; what differs is the binary, the ubd mode switch
(umlrun only), the COW tool and the console switches UML needs to keep its
serial lines and extra consoles off.
"""

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_IMAGE = REPO / "disk-images" / "busybox.img"


class RunnerError(Exception):
    """A runner or its tools are missing or failed."""


@dataclass
class Runner:
    """How to start one kind of instance.

    name: "umlrun" or "uml"; mode: "mmap" or "copy" (umlrun only; UML has no
    ubd=mmap any more, so its mode is reported as "uml").
    """

    name: str
    binary: str
    mode: str
    cow_tool: str
    # umlrun only: platform=ptrace|seccomp (None: umlrun's default, which
    # UMLRUN_PLATFORM in the environment may change).
    platform: str = None
    # A label of its own ("before-mmap": a second umlrun binary measured
    # beside this tree's, see make_runner's binary=).
    tag: str = None
    # umlrun only: more switches after the standard ones (measure-memory
    # --eth: eth0=user).
    extra: tuple = ()

    @property
    def label(self):
        if self.tag:
            return self.tag
        if self.name != "umlrun":
            return "uml"
        if self.platform == "seccomp":
            return f"umlrun-{self.mode}-seccomp"
        return f"umlrun-{self.mode}"

    def argv(self, cow, backing, umid, uml_dir, mem):
        if self.name == "umlrun":
            return [
                self.binary,
                f"mem={mem}",
                f"ubd={self.mode}",
                f"ubd0={cow},{backing}",
                f"umid={umid}",
                f"uml_dir={uml_dir}",
                "con0=fd:0,fd:1",
            ] + ([f"platform={self.platform}"] if self.platform else []) + list(self.extra)
        return [
            self.binary,
            f"ubd0={cow},{backing}",
            f"mem={mem}",
            f"umid={umid}",
            f"uml_dir={uml_dir}",
            "con0=fd:0,fd:1",
            "con=null",
            "ssl=null",
        ]

    def make_cow(self, cow, backing):
        """Create a fresh COW file `cow` over `backing`."""
        cow, backing = str(cow), str(backing)
        if os.path.exists(cow):
            os.unlink(cow)
        if self.name == "umlrun":
            cmd = [self.cow_tool, "create", cow, backing]
        else:
            cmd = [self.cow_tool, "-f", cow, backing]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RunnerError(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr.strip()}")


def _find(path_or_name, hint):
    if os.sep in path_or_name:
        if os.access(path_or_name, os.X_OK):
            return path_or_name
        raise RunnerError(f"{path_or_name} not found ({hint})")
    found = shutil.which(path_or_name)
    if not found:
        raise RunnerError(f"{path_or_name} not found on PATH ({hint})")
    return found


def make_runner(name, mode="mmap", platform=None, binary=None, tag=None):
    """A Runner for "umlrun" (mode mmap|copy, platform ptrace|seccomp|None) or
    "uml"; checks the binaries exist. binary= names another umlrun (an older
    build to compare with): its umlcow is the one beside it, and the runner's
    label is `tag` (default "before-<mode>")."""
    if name == "umlrun":
        if mode not in ("mmap", "copy"):
            raise RunnerError(f"--mode {mode}: use mmap or copy")
        if binary is not None:
            cow = os.path.join(os.path.dirname(os.path.abspath(binary)), "umlcow")
            return Runner(
                "umlrun",
                _find(os.path.abspath(binary), "the umlrun to compare with"),
                mode,
                _find(cow, "the umlcow built with it, beside it"),
                platform,
                tag or f"before-{mode}",
            )
        hint = "build it: cargo build --release"
        return Runner(
            "umlrun",
            _find(os.environ.get("UMLRUN", str(REPO / "target/x86_64-unknown-linux-gnu/release/umlrun")), hint),
            mode,
            _find(os.environ.get("UMLCOW", str(REPO / "target/x86_64-unknown-linux-gnu/release/umlcow")), hint),
            platform,
        )
    if name == "uml":
        hint = "apt-get install user-mode-linux uml-utilities"
        return Runner("uml", _find("linux.uml", hint), "uml", _find("uml_mkcow", hint))
    raise RunnerError(f"--runner {name}: use umlrun or uml")
