"""umlharness: boot many umlrun or linux.uml instances on ptys and measure them.

Shared by scripts/boot-many and scripts/measure-memory.

| module   | owns                                                              |
|----------|-------------------------------------------------------------------|
| runners  | the two runners (umlrun, Debian's linux.uml): command lines, COWs  |
| instance | one instance on its own pty: transcript, expect, login, run, stop  |
| fleet    | N instances: concurrent boot with progress, scripts, stop-all      |
| hostmem  | host memory facts: meminfo, drop caches, per-process memory        |
| cgroup   | a memory cgroup (v1 or v2) to boot instances inside                |
"""

from .runners import Runner, RunnerError, make_runner  # noqa: F401
from .instance import Instance, InstanceError  # noqa: F401
from .fleet import Fleet, FleetError, interrupts_as_exceptions  # noqa: F401
