//! Host signals to umlrun itself: SIGTERM, SIGHUP and SIGINT ask for a
//! clean shutdown of the guest (dirty pages written back, terminal
//! restored) instead of killing umlrun on the spot. SIGWINCH (umlrun's
//! controlling terminal was resized) is noted for the console. Each
//! handler also wakes the event loop (`event_loop::notify_from_signal`).

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

static TERMINATE: AtomicBool = AtomicBool::new(false);
static RESIZED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_terminate(_: libc::c_int) {
    TERMINATE.store(true, Ordering::SeqCst);
    super::event_loop::notify_from_signal();
}

extern "C" fn on_winch(_: libc::c_int) {
    RESIZED.store(true, Ordering::SeqCst);
    super::event_loop::notify_from_signal();
}

/// Handles SIGWINCH (SA_RESTART: only the event loop's wait, which is
/// never restarted, notices the interruption).
pub fn install_resize_handler() {
    let act = SigAction::new(
        SigHandler::Handler(on_winch),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler stores to an atomic and write(2)s one byte,
    // both async-signal-safe.
    if let Err(e) = unsafe { sigaction(Signal::SIGWINCH, &act) } {
        log::warn!("cannot handle SIGWINCH: {e}");
    }
}

/// True (once) after SIGWINCH arrived.
pub fn take_resized() -> bool {
    RESIZED.swap(false, Ordering::SeqCst)
}

/// Installs the handlers (no SA_RESTART: a blocking poll returns at once).
pub fn install_termination_handlers() {
    let act = SigAction::new(
        SigHandler::Handler(on_terminate),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for s in [Signal::SIGTERM, Signal::SIGHUP, Signal::SIGINT] {
        // SAFETY: the handler only stores to an atomic and write(2)s one
        // byte, both async-signal-safe.
        if let Err(e) = unsafe { sigaction(s, &act) } {
            log::warn!("cannot handle {s}: {e}");
        }
    }
    // A guest console writer must not die of a closed output.
    // SAFETY: ignoring SIGPIPE installs no handler code at all.
    let _ = unsafe {
        sigaction(
            Signal::SIGPIPE,
            &SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty()),
        )
    };
}

/// True once umlrun was asked to stop.
pub fn termination_requested() -> bool {
    TERMINATE.load(Ordering::SeqCst)
}
