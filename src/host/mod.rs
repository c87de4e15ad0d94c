//! The host interface: the ONLY module that calls libc/nix directly, like
//! UML's `arch/um/os-Linux`. Everything above it is kernel logic that tests
//! can drive without a host.
//!
//! | file        | owns |
//! |-------------|------|
//! | `memfd.rs`  | anonymous memory files: create, size, seal, punch holes, resident size |
//! | `mapping.rs`| shared mappings of host fds with safe byte access, and remapping a range over a file page |
//! | `clock.rs`  | host clocks for the guest's clock syscalls |
//! | `console.rs`| umlrun's stdin/stdout as the guest console, raw mode and its restoration |
//! | `event_loop.rs`| the one epoll the kernel thread sleeps in: host fd registration, readiness, signal wake-ups |
//! | `fdpass.rs` | the socketpair every stub holds from birth: host fds (a hot-added disk's) passed to running stubs with SCM_RIGHTS |
//! | `file.rs`   | positional I/O, fcntl locks, file metadata for disk images |
//! | `preempt.rs`| the ticker (one per ptrace platform) that interrupts guests computing for a whole slice |
//! | `ptrace.rs` | tracing stub processes: spawn, resume, stops, registers |
//! | `xstate.rs` | the XSAVE (AVX, AVX-512) state of stubs: host layout, get and set |
//! | `stub.rs`   | the sealed memfd the stub ELF is exec'd from |
//! | `seccomp_stub.rs` | the seccomp platform's stub code (assembled here), the area each stub shares with umlrun, futex handoff, detach |
//! | `cpu.rs`    | pinning umlrun and its stubs to one CPU |
//! | `signals.rs`| SIGTERM/SIGHUP/SIGINT to umlrun: a clean shutdown request; SIGWINCH |
//! | `mcsock.rs` | the management console's AF_UNIX datagram sockets (server, client, notify) |
//! | `heap.rs`   | umlrun's heap counted as it grows (its global allocator): bytes in use and the peak since a mark |
//! | `memacct.rs`| the memory cgroup's limit and usage; private memory of umlrun and its stubs |
//! | `misc.rs`   | pids, terminals, home directory and other process-level facts |
//! | `netsock.rs`| host TCP listeners and connections for the user-mode NAT's port forwards |
//! | `tap.rs`    | a host tap device by name (/dev/net/tun, TUNSETIFF) for `ethN=tuntap` |
//! | `umlswitch.rs`| a port on a `uml_switch` (UML's daemon protocol v3: control stream, datagram data socket) for `ethN=daemon` |
//! | `holder_image.rs` | the namespace holder's one-page program (assembled here): name itself, report ready, strict seccomp, sleep |
//! | `namespaces.rs` | `namespaces=`: the stubs' own user, pid, mount (an empty read-only root) and network namespaces, held by a sleeping pid 1 |
//! | `privs.rs`  | least privilege for umlrun itself: no_new_privs, `uid=`/`gid=`, installing its own seccomp filters and the SIGSYS report |

pub mod clock;
pub mod console;
pub mod cpu;
pub mod event_loop;
pub mod fdpass;
pub mod file;
pub mod heap;
pub mod holder_image;
pub mod mapping;
pub mod mcsock;
pub mod memacct;
pub mod memfd;
pub mod misc;
pub mod namespaces;
pub mod netsock;
pub mod preempt;
pub mod privs;
pub mod ptrace;
pub mod seccomp_stub;
pub mod signals;
pub mod stub;
pub mod tap;
pub mod umlswitch;
pub mod xstate;
