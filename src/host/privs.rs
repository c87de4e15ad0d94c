//! Least privilege for umlrun itself: no_new_privs, set before the first
//! stub starts, so neither umlrun nor any stub (nor anything a bug could
//! make them exec) can gain privileges through a set-uid or file-capable
//! binary. What is not done yet (issue 10 item 5): dropping root after
//! set-up (`uid=`/`gid=` switches), new user/mount namespaces, and a
//! seccomp filter on umlrun's own threads.

use std::io;

/// prctl(PR_SET_NO_NEW_PRIVS, 1): for this process and everything it
/// starts from now on. Irreversible.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only; no memory is passed.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether no_new_privs is set for this process.
pub fn no_new_privs() -> bool {
    // SAFETY: prctl with integer arguments only; no memory is passed.
    unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 }
}
