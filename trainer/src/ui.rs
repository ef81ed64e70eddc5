//! How talkative the command line is: `-q` (errors only), default, `-v` (also one line per
//! training epoch, for logs where no progress bar is drawn). Set once by `main`; read by the
//! stages that print progress. Results asked for (`--json`, tables) are not affected by `-v`;
//! `-q` silences progress and human summaries, never errors.

use std::sync::atomic::{AtomicI8, Ordering};

static LEVEL: AtomicI8 = AtomicI8::new(0);

/// Sets the level: -1 quiet, 0 normal, 1 verbose.
pub fn set_level(level: i8) {
    LEVEL.store(level.clamp(-1, 1), Ordering::Relaxed);
}

/// `-q` was given.
pub fn quiet() -> bool {
    LEVEL.load(Ordering::Relaxed) < 0
}

/// `-v` was given.
pub fn verbose() -> bool {
    LEVEL.load(Ordering::Relaxed) > 0
}

/// `eprintln!` unless quiet: progress lines of the stages.
#[macro_export]
macro_rules! note {
    ($($t:tt)*) => {
        if !$crate::ui::quiet() {
            eprintln!($($t)*);
        }
    };
}
