"""Host memory facts: /proc/meminfo, dropping caches, and what one instance
holds: its guest memory file (umlrun's memfd, UML's /dev/shm file) by
st_blocks, its processes' private anonymous RSS, and how much of a file sits
in the host page cache (mincore).
"""

import ctypes
import mmap
import os

PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1 << 20


def meminfo():
    """/proc/meminfo as {field: bytes}."""
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, rest = line.split(":", 1)
            parts = rest.split()
            out[key] = int(parts[0]) * (1024 if len(parts) > 1 else 1)
    return out


def drop_caches():
    """sync, then drop clean page cache, dentries and inodes (needs root)."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def group_pids(pgid):
    """Every live pid in process group `pgid` (an instance and its stubs)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the ")" closing comm: state ppid pgrp ...
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:
            pids.append(int(name))
    return pids


def _is_guest_memory(link):
    # umlrun: memfd "umlrun-physmem"; UML: an unlinked file in /dev/shm or $TMPDIR.
    return link.startswith("/memfd:umlrun-physmem") or (
        link.endswith("(deleted)") and (link.startswith("/dev/shm/") or "/vm_file-" in link))


def guest_memory_bytes(pids):
    """Bytes the host holds for the guest memory files open in `pids`, each
    file counted once (fstat st_blocks * 512 through /proc/<pid>/fd)."""
    seen, total = set(), 0
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            path = f"/proc/{pid}/fd/{fd}"
            try:
                link = os.readlink(path)
                if not _is_guest_memory(link):
                    continue
                st = os.stat(path)
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen.add(key)
                total += st.st_blocks * 512
    return total


def anon_rss_bytes(pids):
    """Sum of RssAnon (private anonymous memory) over `pids`: the runner's
    own memory, not the guest's memory file nor the shared page cache."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
MAP_FAILED = ctypes.c_void_p(-1).value


def cached_bytes(path):
    """How much of `path` is in the host page cache now (mmap + mincore;
    mapping it does not read it in)."""
    size = os.path.getsize(path)
    if size == 0:
        return 0
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, MAP_FAILED):
            raise OSError(ctypes.get_errno(), f"mmap {path}")
        try:
            pages = (size + PAGE - 1) // PAGE
            vec = ctypes.create_string_buffer(pages)
            if _libc.mincore(addr, size, vec) != 0:
                raise OSError(ctypes.get_errno(), f"mincore {path}")
            return sum(b & 1 for b in vec.raw[:pages]) * PAGE
        finally:
            _libc.munmap(addr, size)
    finally:
        os.close(fd)
