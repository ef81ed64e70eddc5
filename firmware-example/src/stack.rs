//! Stack high-water mark: the free RAM between the end of static data and the stack pointer is
//! painted with a pattern at start; at the end, the first overwritten word tells how deep the
//! stack went.

const PAINT: u32 = 0xC0FF_EE55;

unsafe extern "C" {
    static mut __euninit: u32;
    static _stack_start: u32;
}

fn bounds() -> (*mut u32, usize) {
    let low = core::ptr::addr_of_mut!(__euninit);
    let top = core::ptr::addr_of!(_stack_start) as usize;
    (low, top)
}

/// Paints the unused stack (leaves 256 bytes below the current stack pointer alone).
pub fn paint() {
    let (low, _) = bounds();
    let sp = cortex_m::register::msp::read() as usize - 256;
    let mut p = low;
    while (p as usize) < sp {
        // SAFETY: [low, sp) is RAM above all statics and below the live stack.
        unsafe { p.write_volatile(PAINT) };
        p = p.wrapping_add(1);
    }
}

/// Deepest stack use so far, in bytes.
pub fn high_water_bytes() -> u32 {
    let (low, top) = bounds();
    let mut p = low;
    // SAFETY: reads RAM between the statics and the stack top.
    while (p as usize) < top && unsafe { p.read_volatile() } == PAINT {
        p = p.wrapping_add(1);
    }
    (top - p as usize) as u32
}
