"""N instances over one backing image: COW files, concurrent boot with a
counted progress line, login and scripts, transcripts, and a stop-all that
runs on every way out (poweroff, then SIGTERM, then SIGKILL by pid).
"""

import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from .instance import Instance, InstanceError


class FleetError(Exception):
    """One or more instances failed; the message names each."""


class Interrupted(BaseException):
    """Raised in the main thread by SIGINT/SIGTERM/SIGHUP."""


@contextmanager
def interrupts_as_exceptions():
    """Turn SIGINT, SIGTERM and SIGHUP into an Interrupted exception, so
    `finally` blocks (stop-all) run; restores the old handlers after."""

    def handler(signum, _frame):
        raise Interrupted(f"interrupted by {signal.Signals(signum).name}")

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class Fleet:
    """N instances of one runner, each with its own COW file, umid and pty.

    workdir holds the COW files and the uml_dir; out_dir the transcripts.
    wrap(index) may return a command prefix for instance `index`.
    """

    def __init__(self, runner, backing, workdir, out_dir, mem="64M", tag=None, wrap=None, quiet=False):
        self.runner = runner
        self.backing = os.path.abspath(backing)
        self.workdir = workdir
        self.out_dir = out_dir
        self.mem = mem
        self.tag = tag or f"bm{os.getpid()}"
        self.wrap = wrap
        self.quiet = quiet
        self.uml_dir = os.path.join(workdir, "uml")
        self.instances = []
        os.makedirs(self.uml_dir, exist_ok=True)
        os.makedirs(out_dir, exist_ok=True)

    def say(self, text, end="\n"):
        if not self.quiet:
            sys.stderr.write(text + end)
            sys.stderr.flush()

    def cow_path(self, inst):
        return os.path.join(self.workdir, f"{inst.umid}.cow")

    def add(self):
        """Create the next instance (its COW file too) without starting it."""
        i = len(self.instances)
        umid = f"{self.tag}-{i:03d}"
        cow = os.path.join(self.workdir, f"{umid}.cow")
        self.runner.make_cow(cow, self.backing)
        argv = self.runner.argv(cow, self.backing, umid, self.uml_dir, self.mem)
        inst = Instance(i, umid, argv, self.uml_dir, os.path.join(self.out_dir, f"{umid}.log"),
                        cwd=self.workdir, wrap=self.wrap(i) if self.wrap else None)
        self.instances.append(inst)
        return inst

    def boot(self, n, timeout):
        """Create and start n instances at once; wait for every login prompt.

        Raises FleetError naming every instance that failed."""
        new = [self.add() for _ in range(n)]
        for inst in new:
            inst.start()
        self.wait_prompts(new, timeout)
        return new

    def wait_prompts(self, insts, timeout):
        failures = []
        done = 0
        lock = threading.Lock()

        def wait(inst):
            nonlocal done
            try:
                inst.wait_login(timeout)
            except InstanceError as e:
                inst.state, inst.error = "failed", e
                with lock:
                    failures.append(e)
            with lock:
                done += 1

        workers = [threading.Thread(target=wait, args=(i,), daemon=True) for i in insts]
        for w in workers:
            w.start()
        last = None
        while any(w.is_alive() for w in workers):
            booted = sum(1 for i in insts if i.state in ("login", "shell"))
            line = f"booted {booted}/{len(insts)}" + (f", {len(failures)} failed" if failures else "")
            if line != last:
                self.say("\r" + line, end="")
                last = line
            time.sleep(0.2)
        booted = sum(1 for i in insts if i.state in ("login", "shell"))
        self.say(f"\rbooted {booted}/{len(insts)}" + (f", {len(failures)} failed" if failures else ""))
        if failures:
            raise FleetError("\n\n".join(str(e) for e in sorted(failures, key=lambda e: e.inst.index)))

    def run_script(self, commands, insts=None, timeout=60, login=True):
        """Log each instance in (if needed) and run `commands` in order.

        Returns {index: [(command, status, output), ...]}. A command that exits
        non-zero is recorded, not fatal; a lost console is a failure."""
        insts = insts if insts is not None else self.live()
        results, failures = {}, []

        def one(inst):
            try:
                if inst.state == "login" and login:
                    inst.login(timeout)
                out = []
                for cmd in commands:
                    status, text = inst.run(cmd, timeout)
                    out.append((cmd, status, text))
                results[inst.index] = out
            except InstanceError as e:
                inst.state, inst.error = "failed", e
                failures.append(e)

        with ThreadPoolExecutor(max_workers=min(32, max(1, len(insts)))) as pool:
            list(pool.map(one, insts))
        if failures:
            raise FleetError("\n\n".join(str(e) for e in sorted(failures, key=lambda e: e.inst.index)))
        return results

    def live(self):
        return [i for i in self.instances if i.alive() and i.state in ("login", "shell")]

    def stop_all(self, grace=None, force=False):
        """poweroff, then SIGTERM, then SIGKILL, each by pid; returns the
        instances that did not power off cleanly (exit code 0). force: start
        with `sync; poweroff -f` (no init shutdown actions and sleeps), for
        throw-away instances whose COW files nobody keeps."""
        started = [i for i in self.instances if i.proc is not None]
        if not started:
            return []
        grace = grace if grace is not None else 15 + 0.2 * len(started)
        running = [i for i in started if i.alive()]
        if running:
            self.say(f"stopping {len(running)} instance(s): poweroff{' -f' if force else ''}")
            with ThreadPoolExecutor(max_workers=min(32, len(running))) as pool:
                list(pool.map(lambda i: i.request_poweroff(force=force), running))
            # Only those that took the poweroff are worth waiting for. A plain
            # `poweroff` goes through init (shutdown actions); if init ignored
            # it, `poweroff -f` calls reboot(2) itself.
            self._wait_exit([i for i in running if i.state == "stopping"], min(grace, 5.0))
            stuck = [i for i in running if i.alive() and i.state == "stopping"]
            if stuck:
                self.say(f"{len(stuck)} ignored poweroff: sync; poweroff -f")
                for i in stuck:
                    i.request_poweroff(force=True)
                self._wait_exit(stuck, grace)
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            running = [i for i in started if i.alive()]
            if not running:
                break
            self.say(f"{len(running)} still running: {sig.name}")
            for i in running:
                i.signal(sig)
            self._wait_exit(running, wait)
        unclean = []
        for i in started:
            if i.proc.poll() is None or i.proc.returncode != 0:
                unclean.append(i)
            i.close()
        return unclean

    @staticmethod
    def _wait_exit(insts, timeout):
        deadline = time.monotonic() + timeout
        for i in insts:
            i.reap(max(0.0, deadline - time.monotonic()))


def read_script(path):
    """Command lines of a script file: blank lines and # comments skipped."""
    with open(path) as f:
        return [ln.rstrip("\n") for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
