//! Host files through semihosting (the debugger or QEMU serves them): how the parity tests
//! feed whole recorded flights to the firmware. A real sensor loop reads an ADC instead.

use cortex_m_semihosting::{nr, syscall};

/// An open host file.
pub struct File(usize);

impl File {
    /// Opens `name` (NUL-terminated) for binary reading; `None` if the host has no such file.
    pub fn open(name: &[u8]) -> Option<File> {
        debug_assert_eq!(name.last(), Some(&0));
        // SAFETY: OPEN reads `name` (NUL-terminated, length excluding the NUL) and nothing else.
        let fd = unsafe { syscall!(OPEN, name.as_ptr(), nr::open::R_BINARY, name.len() - 1) };
        if fd == usize::MAX { None } else { Some(File(fd)) }
    }

    /// File length in bytes.
    pub fn len(&self) -> Result<usize, &'static str> {
        // SAFETY: FLEN takes the handle only.
        let n = unsafe { syscall!(FLEN, self.0) };
        if n == usize::MAX { Err("host file: cannot read its length") } else { Ok(n) }
    }

    /// Fills as much of `buf` as the file has left; returns the bytes read (0 at the end).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, &'static str> {
        // SAFETY: READ writes at most buf.len() bytes into buf.
        let not_read = unsafe { syscall!(READ, self.0, buf.as_mut_ptr(), buf.len()) };
        if not_read > buf.len() { Err("host file: read failed") } else { Ok(buf.len() - not_read) }
    }

    /// Reads exactly `buf.len()` bytes.
    pub fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), &'static str> {
        let mut at = 0;
        while at < buf.len() {
            let n = self.read(&mut buf[at..])?;
            if n == 0 {
                return Err("host file: truncated");
            }
            at += n;
        }
        Ok(())
    }
}

impl Drop for File {
    fn drop(&mut self) {
        // SAFETY: CLOSE takes the handle only.
        unsafe { syscall!(CLOSE, self.0) };
    }
}

/// Reads the whole host file `name` into `buf`: `Ok(None)` when the host has no such file.
pub fn read_file(name: &[u8], buf: &mut [u8]) -> Result<Option<usize>, &'static str> {
    let Some(mut f) = File::open(name) else { return Ok(None) };
    let n = f.len()?;
    if n > buf.len() {
        return Err("host bundle file is larger than the firmware's bundle buffer (160 KiB)");
    }
    f.read_exact(&mut buf[..n])?;
    Ok(Some(n))
}
