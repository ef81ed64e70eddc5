//! A boundary around third-party decoders that panic on malformed input.
//!
//! parquet-rs (60.1) panics on some corrupt files instead of returning an error (found by
//! `avm-fuzz`: negative column chunk offsets, out-of-bounds page indices). avm reads files
//! from outside, so every Parquet decode runs inside [`decode`]: a panic there becomes an
//! ordinary error naming the file, and the panic hook that [`install_panic_hook`] sets stays
//! silent for it (any other panic is still printed as a bug).

use std::cell::Cell;

thread_local! {
    static DECODING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`; a panic inside it is returned as `Err(message)`.
pub fn decode<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let was = DECODING.with(|d| d.replace(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    DECODING.with(|d| d.set(was));
    r.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the decoder failed".into())
    })
}

/// Keeps the default panic message for real bugs, silences panics caught by [`decode`].
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !DECODING.with(Cell::get) {
            default(info);
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_and_the_flag_is_restored() {
        assert_eq!(decode(|| 3), Ok(3));
        let e = decode(|| -> u8 { panic!("bad page") }).unwrap_err();
        assert_eq!(e, "bad page");
        assert!(!DECODING.with(Cell::get));
    }
}
