"""A memory cgroup to boot instances inside: cgroup v1 (memory controller at
/sys/fs/cgroup/memory) or v2 (unified, memory enabled), whichever the host
has. Processes join it before they start (join_prefix), so every page they
touch is charged to it from the first one.
"""

import os
import signal
import time

V1_ROOT = "/sys/fs/cgroup/memory"
V2_ROOT = "/sys/fs/cgroup"


class CgroupError(Exception):
    """No usable memory cgroup, or it could not be set up or removed."""


def _read(path):
    with open(path) as f:
        return f.read()


def _write(path, value):
    with open(path, "w") as f:
        f.write(str(value))


def detect():
    """"v1" or "v2": which memory cgroup hierarchy this host offers."""
    if os.path.exists(os.path.join(V1_ROOT, "memory.limit_in_bytes")):
        return "v1"
    try:
        if "memory" in _read(os.path.join(V2_ROOT, "cgroup.controllers")).split():
            return "v2"
    except OSError:
        pass
    raise CgroupError("no memory cgroup: neither v1 at /sys/fs/cgroup/memory nor v2 with the memory controller")


class MemCgroup:
    """A fresh memory cgroup `name`, with an optional limit in bytes; its
    processes may escape the limit into host swap only with swap=True."""

    def __init__(self, name, limit=None, swap=False):
        self.swap = swap
        self.version = detect()
        root = V1_ROOT if self.version == "v1" else V2_ROOT
        self.path = os.path.join(root, name)
        if self.version == "v2":
            ctl = os.path.join(root, "cgroup.subtree_control")
            if "memory" not in _read(ctl).split():
                _write(ctl, "+memory")
        try:
            os.mkdir(self.path)
        except OSError as e:
            raise CgroupError(f"mkdir {self.path}: {e.strerror}") from e
        if limit is not None:
            self.set_limit(limit)

    def _file(self, v1, v2):
        return os.path.join(self.path, v1 if self.version == "v1" else v2)

    def set_limit(self, limit):
        _write(self._file("memory.limit_in_bytes", "memory.max"), int(limit))
        if self.version == "v2":
            swap = os.path.join(self.path, "memory.swap.max")
            if os.path.exists(swap):
                # Without swap=True no escape into swap: the budget is RAM.
                _write(swap, "max" if self.swap else 0)
        elif self.swap:
            # v1 has no swap limit of its own unless memory.memsw.* is set
            # (left unlimited); a swappiness of 0 inherited would keep
            # anonymous pages in and OOM-kill instead.
            _write(os.path.join(self.path, "memory.swappiness"), 60)

    def usage(self):
        """Bytes charged now: process memory, page cache, kernel memory."""
        return int(_read(self._file("memory.usage_in_bytes", "memory.current")))

    def stat(self):
        """memory.stat as {key: int}, keys normalised to anon/file/shmem/file_mapped."""
        raw = {}
        for line in _read(os.path.join(self.path, "memory.stat")).splitlines():
            k, v = line.split()[:2]
            raw[k] = int(v)
        if self.version == "v1":
            return {"anon": raw.get("total_rss", 0), "file": raw.get("total_cache", 0),
                    "shmem": raw.get("total_shmem", 0), "file_mapped": raw.get("total_mapped_file", 0)}
        return {k: raw.get(k, 0) for k in ("anon", "file", "shmem", "file_mapped")}

    def oom_kills(self):
        """How many processes the OOM killer has killed in this cgroup."""
        text = _read(self._file("memory.oom_control", "memory.events"))
        for line in text.splitlines():
            k, v = line.split()[:2]
            if k == "oom_kill":
                return int(v)
        return 0

    def failcnt(self):
        """v1: times the limit was hit; v2: `max` events."""
        if self.version == "v1":
            return int(_read(os.path.join(self.path, "memory.failcnt")))
        for line in _read(os.path.join(self.path, "memory.events")).splitlines():
            k, v = line.split()
            if k == "max":
                return int(v)
        return 0

    def pids(self):
        try:
            return [int(p) for p in _read(os.path.join(self.path, "cgroup.procs")).split()]
        except OSError:
            return []

    def join_prefix(self):
        """A command prefix that moves the shell into this cgroup and then
        execs the real command, keeping its pid."""
        return ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', self.path]

    def remove(self, timeout=10):
        """SIGKILL what is left inside (by pid), then rmdir the cgroup."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.pids()
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError as e:
                if time.monotonic() > deadline:
                    raise CgroupError(f"rmdir {self.path}: {e.strerror} (pids left: {self.pids()})") from e
                time.sleep(0.2)
