//! Setting a socket option on a raw descriptor (`setsockopt(2)`), for the
//! options neither glommio nor socket2 sets on a socket we only hold by fd
//! (`SO_LINGER` 0 before an abortive close, `TCP_NODELAY` on a live
//! connection, `IP_RECVERR` on a UDP socket).

use std::io;
use std::os::fd::RawFd;

/// Sets option `name` at `level` on `fd` to `value`.
pub(crate) fn set<T>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: the pointer and length describe `value`, which outlives the
    // call; the kernel only reads it. A wrong fd is an error (EBADF,
    // ENOTSOCK), not undefined behaviour.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            value as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
