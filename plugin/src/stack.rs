//! Gives back the stack pages a pool worker touched while it set a request
//! up, once it has settled into reading a long stream (job/read.rs calls it
//! after a stream's first second).
//!
//! A thread's stack pages stay resident once touched, however shallow the
//! thread runs afterwards, and setting a request up runs deep: resolving,
//! connecting, the TLS handshake and sending go through ureq's and rustls's
//! state machines, which keep large values on the stack. Measured on the
//! bench's scale run (2,000 streams over plain HTTP): 32 KiB of each
//! worker's stack was resident while it streamed; with the pages below the
//! read loop's frame given back, 16 KiB (the loop's deepest call reaches
//! about 14.4 KiB below the top). At 10,000 streams that is 160 MB. The
//! loop's calls fault in again the few pages they use.
//!
//! Linux only (glibc or musl: `pthread_getattr_np`); a no-op elsewhere.

/// Returns to the kernel this pool worker's stack pages that lie wholly
/// below the caller's frame. Call it where the stack is shallow and the
/// thread is about to spend long on shallow calls. A no-op off the pool's
/// threads (whose stacks the plugin did not make) and off Linux.
#[inline(never)]
pub fn release_unused() {
    if crate::pool::on_pool_thread() {
        imp::release_below(imp::here());
    }
}

#[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
#[allow(unsafe_code)]
mod imp {
    use std::mem::MaybeUninit;

    /// An address inside the current frame.
    #[inline(always)]
    pub fn here() -> usize {
        let marker = 0u8;
        std::hint::black_box(std::ptr::addr_of!(marker)) as usize
    }

    /// The lowest address of the calling thread's stack, guard excluded.
    fn stack_low() -> Option<usize> {
        let mut attr = MaybeUninit::<libc::pthread_attr_t>::uninit();
        // SAFETY: pthread_getattr_np initialises `attr` for the calling
        // thread (it returns non-zero and leaves it untouched on failure);
        // getstack only reads an initialised attr and writes the two out
        // values; destroy is called once, on the initialised attr only.
        unsafe {
            if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
                return None;
            }
            let mut addr = std::ptr::null_mut();
            let mut size = 0;
            let got = libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size);
            libc::pthread_attr_destroy(attr.as_mut_ptr());
            (got == 0 && !addr.is_null()).then_some(addr as usize)
        }
    }

    pub fn release_below(frame: usize) {
        // SAFETY: sysconf has no preconditions.
        let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            p if p > 0 => p as usize,
            _ => return,
        };
        let Some(low) = stack_low() else { return };
        // Keep the page holding `frame` and one more below it: the rest of
        // the caller's frame and the madvise wrapper's own frame live there.
        let end = (frame & !(page - 1)).saturating_sub(page);
        if end <= low {
            return;
        }
        // SAFETY: [low, end) lies inside this thread's own stack mapping
        // (private, anonymous, read-write) and wholly below the live frames:
        // the stack grows down, `end` is at least a page below this call's
        // frame, and no signal handler can be running on this thread while
        // it makes this call (it would finish first). Nothing there is
        // live, so the zero-filled pages MADV_DONTNEED leaves behind are
        // as good as the old ones. On failure nothing changed.
        unsafe {
            libc::madvise(low as *mut libc::c_void, end - low, libc::MADV_DONTNEED);
        }
    }
}

#[cfg(not(all(target_os = "linux", any(target_env = "gnu", target_env = "musl"))))]
mod imp {
    pub fn here() -> usize {
        0
    }

    pub fn release_below(_frame: usize) {}
}

#[cfg(all(
    test,
    target_os = "linux",
    any(target_env = "gnu", target_env = "musl")
))]
#[allow(unsafe_code)]
mod tests {
    use super::imp;

    /// The page size: 4 KiB on x86-64, up to 64 KiB on aarch64 and ppc64le.
    fn page() -> usize {
        // SAFETY: sysconf has no preconditions.
        unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
    }

    /// Touches about `bytes` of stack below the caller, then returns.
    #[inline(never)]
    fn go_deep(bytes: usize) {
        let mut block = [0u8; 16 * 1024];
        std::hint::black_box(&mut block);
        if bytes > block.len() {
            go_deep(bytes - block.len());
        }
    }

    /// How many of the pages in [from, to) are resident.
    fn resident(from: usize, to: usize) -> usize {
        let pages = (to - from) / page();
        let mut map = vec![0u8; pages];
        // SAFETY: [from, to) is page-aligned and inside this thread's stack
        // mapping; mincore writes one byte per page into `map`.
        let ok = unsafe { libc::mincore(from as *mut libc::c_void, to - from, map.as_mut_ptr()) };
        assert_eq!(ok, 0, "mincore failed");
        map.iter().filter(|&&b| b & 1 == 1).count()
    }

    #[test]
    fn pages_below_the_frame_are_given_back_and_work_again() {
        // A thread of our own, with a known stack, as the pool's workers have.
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(|| {
                // 128 KiB of stack, a few pages however big they are,
                // below the first 64 KiB under this frame.
                let page = page();
                let (skip, span) = ((64 * 1024).max(2 * page), (128 * 1024).max(2 * page));
                go_deep(skip + span + 32 * 1024);
                let frame = imp::here();
                let to = (frame & !(page - 1)) - skip;
                let from = to - span;
                let pages = span / page;
                assert_eq!(resident(from, to), pages, "go_deep touched them");
                imp::release_below(frame);
                assert_eq!(resident(from, to), 0, "given back");
                // The stack still works below: the pages come back zeroed.
                go_deep(skip + span + 32 * 1024);
                assert_eq!(resident(from, to), pages);
            })
            .expect("spawn")
            .join()
            .expect("the thread ran to its end");
    }
}
