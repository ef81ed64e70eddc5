//! The mutation engine: deterministic (ChaCha8 from a seed), byte- and token-level.
//!
//! Written here rather than taken from a crate: the fuzzing crates that mutate on stable
//! (e.g. through libFuzzer) need nightly sanitizer flags or a C++ toolchain build step;
//! this is ~100 lines and needs neither.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

/// Values that break parsers more often than random bytes: boundaries of integer widths,
/// non-finite and huge floats, empty and negative numbers, separators, a BOM, path tricks.
const TOKENS: &[&[u8]] = &[
    b"0",
    b"-1",
    b"-0",
    b"1e39",
    b"-1e39",
    b"1e308",
    b"1e-320",
    b"nan",
    b"NaN",
    b"inf",
    b"-inf",
    b".nan",
    b"4294967295",
    b"4294967296",
    b"18446744073709551616",
    b"2147483648",
    b"-2147483649",
    b"65536",
    b"1e9",
    b"1e12",
    b"",
    b",",
    b",,",
    b"\n",
    b"\r\n",
    b"\"",
    b"\xef\xbb\xbf",
    b"../../../X",
    b"AC99/F001",
    b"null",
    b"[]",
    b"{}",
    b"[0]",
    b"true",
    b"~",
    b": ",
    b"- ",
    b"&a",
    b"*a",
    b"!!binary",
];

/// Interesting 32-bit little-endian integers for binary formats.
const WORDS: &[u32] =
    &[0, 1, 2, 4, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff];

/// A deterministic mutator.
pub struct Mutator {
    rng: ChaCha8Rng,
}

impl Mutator {
    /// From a seed.
    pub fn new(seed: u64) -> Mutator {
        Mutator { rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.rng.next_u64() % n as u64) as usize
    }

    /// A mutant of `input`: 1 to 4 mutations, `other` for splicing.
    pub fn mutate(&mut self, input: &[u8], other: &[u8]) -> Vec<u8> {
        let mut b = input.to_vec();
        let n = 1 + self.below(4);
        for _ in 0..n {
            self.one(&mut b, other);
        }
        b
    }

    fn one(&mut self, b: &mut Vec<u8>, other: &[u8]) {
        let len = b.len();
        match self.below(10) {
            0 if len > 0 => {
                let i = self.below(len);
                b[i] ^= 1 << self.below(8);
            }
            1 if len > 0 => {
                let i = self.below(len);
                b[i] = self.rng.next_u32() as u8;
            }
            2 if len > 0 => {
                // delete a range
                let i = self.below(len);
                let k = 1 + self.below((len - i).min(64));
                b.drain(i..i + k);
            }
            3 => {
                // insert random bytes
                let i = self.below(len + 1);
                let k = 1 + self.below(16);
                let bytes: Vec<u8> = (0..k).map(|_| self.rng.next_u32() as u8).collect();
                b.splice(i..i, bytes);
            }
            4 if len > 0 => {
                // duplicate a range
                let i = self.below(len);
                let k = 1 + self.below((len - i).min(256));
                let chunk = b[i..i + k].to_vec();
                let at = self.below(len + 1);
                b.splice(at..at, chunk);
            }
            5 if len >= 4 => {
                // overwrite a little-endian word with an interesting value
                let i = self.below(len - 3);
                let w = WORDS[self.below(WORDS.len())];
                b[i..i + 4].copy_from_slice(&w.to_le_bytes());
            }
            6 | 7 => {
                // replace a token (a run of number/identifier characters) with an interesting one
                let t = TOKENS[self.below(TOKENS.len())];
                let at = self.below(len + 1);
                let is_tok = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+' | b'_');
                let mut s = at;
                while s > 0 && is_tok(b[s - 1]) {
                    s -= 1;
                }
                let mut e = at;
                while e < len && is_tok(b[e]) {
                    e += 1;
                }
                b.splice(s..e, t.iter().copied());
            }
            8 if len > 0 => {
                b.truncate(self.below(len));
            }
            _ if !other.is_empty() => {
                // splice: a prefix of this one, a suffix of the other
                let i = self.below(len + 1);
                let j = self.below(other.len());
                b.truncate(i);
                b.extend_from_slice(&other[j..]);
            }
            _ => {}
        }
    }
}
