"""One instance on its own pty: spawn, transcript, expect, log in, run, stop.

A reader thread drains the pty all the time (a guest that cannot write its
console would stall) and appends to an in-memory buffer and the transcript
file. Waiting is done on a condition variable over that buffer.
"""

import os
import re
import signal
import subprocess
import threading
import time
import tty

LOGIN_PROMPT = b"login: "
SHELL_PROMPT = b"# "
# Markers around a command's output. The typed line is echoed (and, past 80
# columns, re-wrapped by the guest's line editor), but `@@b""eg@@` and `$?`
# stay literal there, so these only match what the commands print.
BEGIN_CMD = 'echo @@b""eg@@; '
BEGIN_MARK = re.compile(rb"@@beg@@\r*\n")
RC_MARK = re.compile(rb"@@rc(\d+)@@")


class InstanceError(Exception):
    """An instance did not do what was expected; names it and shows its tail."""

    def __init__(self, inst, what):
        self.inst = inst
        super().__init__(f"instance {inst.index} (umid {inst.umid}): {what}\n"
                         f"--- last lines of its console ---\n{inst.tail()}")


class Instance:
    """A runner process with its console on a pty.

    index: the instance's number; argv: its command line; log_path: where the
    transcript goes; wrap: optional prefix (e.g. a cgroup-joining shell).
    """

    def __init__(self, index, umid, argv, uml_dir, log_path, cwd=None, wrap=None):
        self.index = index
        self.umid = umid
        self.argv = argv
        self.uml_dir = uml_dir
        self.log_path = log_path
        self.cwd = cwd
        self.wrap = wrap or []
        self.proc = None
        self.master = None
        self.buf = bytearray()
        self.cond = threading.Condition()
        self.eof = False
        self.state = "new"  # new, booting, login, shell, stopping, exited, failed
        self.error = None
        self.boot_seconds = None
        self._reader = None
        self._log = None

    # --- life cycle -----------------------------------------------------
    def start(self):
        master, slave = os.openpty()
        # Raw host side: the guest's own tty line discipline echoes and edits.
        tty.setraw(slave)
        self._log = open(self.log_path, "wb")
        self.started_at = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                self.wrap + self.argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=self.cwd,
                start_new_session=True,  # own process group: kill the whole tree
                close_fds=True,
            )
        finally:
            os.close(slave)
        self.master = master
        self.state = "booting"
        self._reader = threading.Thread(target=self._pump, name=f"pty-{self.umid}", daemon=True)
        self._reader.start()

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def pidfile_pid(self):
        """The pid in <uml_dir>/<umid>/pid, or None."""
        try:
            with open(os.path.join(self.uml_dir, self.umid, "pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _pump(self):
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO once every slave end is closed
                data = b""
            if not data:
                break
            self._log.write(data)
            self._log.flush()
            with self.cond:
                self.buf += data
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    # --- console ----------------------------------------------------------
    def send(self, text):
        if isinstance(text, str):
            text = text.encode()
        os.write(self.master, text)

    def expect(self, pattern, start, timeout):
        """Wait until `pattern` (bytes or compiled regex) appears in the
        console after offset `start`; returns (match_start, match_end, match)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if isinstance(pattern, bytes):
                    at = self.buf.find(pattern, start)
                    if at >= 0:
                        return at, at + len(pattern), None
                else:
                    m = pattern.search(self.buf, start)
                    if m:
                        return m.start(), m.end(), m
                left = deadline - time.monotonic()
                if self.eof or left <= 0:
                    what = "its console closed" if self.eof else f"no {pattern!r} within {timeout:.0f} s"
                    if self.proc and self.proc.poll() is not None:
                        what += f" (process exited with code {self.proc.returncode})"
                    raise InstanceError(self, what)
                self.cond.wait(min(left, 0.5))

    def mark(self):
        with self.cond:
            return len(self.buf)

    def wait_login(self, timeout):
        self.expect(LOGIN_PROMPT, 0, timeout)
        self.boot_seconds = time.monotonic() - self.started_at
        self.state = "login"

    def login(self, timeout=30):
        """Log in as root at the login prompt (no password) and wait for `# `."""
        at = self.mark()
        self.send("root\n")
        start, end, _ = self.expect(re.compile(rb"# |Password: "), at, timeout)
        if self.buf[start:end] == b"Password: ":
            self.send("\n")
            self.expect(SHELL_PROMPT, end, timeout)
        self.state = "shell"

    def run(self, command, timeout=60):
        """Run one shell command line; returns (exit status, output text).

        The line is wrapped in `echo @@b""eg@@; ...; echo @@rc$?@@`, so the
        output is found whatever the echo of the typed line looks like, the
        status comes back, and a `# ` in the output is not taken for the prompt.
        """
        if self.state != "shell":
            raise InstanceError(self, f"run {command!r}: not at a shell prompt")
        sep = "" if command.rstrip().endswith(("&", ";")) else ";"
        at = self.mark()
        self.send(f"{BEGIN_CMD}{command}{sep} echo @@rc$?@@\n")
        _, out_start, _ = self.expect(BEGIN_MARK, at, timeout)
        start, end, m = self.expect(RC_MARK, out_start, timeout)
        self.expect(SHELL_PROMPT, end, timeout)
        out = bytes(self.buf[out_start:start]).decode(errors="replace")
        return int(m.group(1)), out.replace("\r\n", "\n")

    def tail(self, lines=15):
        with self.cond:
            text = bytes(self.buf[-8192:]).decode(errors="replace")
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        return "\n".join(text.splitlines()[-lines:])

    # --- stopping -----------------------------------------------------------
    def request_poweroff(self, force=False):
        """Ask the guest to power off (best effort, never blocks long).

        force: `sync; poweroff -f` (reboot(2) straight away, no init shutdown
        actions) — the fallback for a guest whose init ignored `poweroff`."""
        if not self.alive():
            return
        try:
            if self.state == "login":
                self.login(timeout=10)
            if self.state in ("shell", "stopping"):
                self.send("sync; poweroff -f\n" if force else "poweroff\n")
                self.state = "stopping"
        except (InstanceError, OSError):
            pass

    def signal(self, sig):
        """Send `sig` to the runner's pid (and, for SIGKILL, its process group)."""
        if not self.alive():
            return
        try:
            os.kill(self.proc.pid, sig)
            if sig == signal.SIGKILL:
                os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def reap(self, timeout):
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.signal(signal.SIGKILL)
            self.reap(5)
        if self.proc:
            # Leftover children in its group (guest process stubs): the group
            # id stays ours while any member lives, so this kills only them.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._reader:
            self._reader.join(2)
        if self.master is not None:
            os.close(self.master)
            self.master = None
        if self._log:
            self._log.close()
            self._log = None
        if self.proc and self.state not in ("failed",):
            self.state = "exited"
