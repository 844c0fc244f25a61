//! The `lib/bitmap.c` / `find_bit` operations CMA uses, on 32-bit words:
//! `unsigned long` is 32 bits on ARM32, so a `[u32]` has exactly the memory
//! layout of Linux's bitmap (and of debugfs' `u32` array view of it).

/// `BITS_PER_LONG` on ARM32.
pub const BITS_PER_LONG: usize = 32;

/// `BITS_TO_LONGS()`.
pub const fn bits_to_longs(nbits: usize) -> usize {
    nbits.div_ceil(BITS_PER_LONG)
}

/// `test_bit()`.
#[inline]
pub fn test_bit(map: &[u32], nr: usize) -> bool {
    map[nr / BITS_PER_LONG] & (1 << (nr % BITS_PER_LONG)) != 0
}

/// `find_next_bit()`: first set bit in `[offset, size)`, or `size`.
pub fn find_next_bit(map: &[u32], size: usize, offset: usize) -> usize {
    find_next(map, size, offset, false)
}

/// `find_next_zero_bit()`: first clear bit in `[offset, size)`, or `size`.
pub fn find_next_zero_bit(map: &[u32], size: usize, offset: usize) -> usize {
    find_next(map, size, offset, true)
}

fn find_next(map: &[u32], size: usize, offset: usize, invert: bool) -> usize {
    if offset >= size {
        return size;
    }
    let mut i = offset / BITS_PER_LONG;
    let flip = if invert { u32::MAX } else { 0 };
    let mut word = (map[i] ^ flip) & (u32::MAX << (offset % BITS_PER_LONG));
    loop {
        if word != 0 {
            let bit = i * BITS_PER_LONG + word.trailing_zeros() as usize;
            return bit.min(size);
        }
        i += 1;
        if i * BITS_PER_LONG >= size {
            return size;
        }
        word = map[i] ^ flip;
    }
}

/// `bitmap_set()`: set bits `[start, start + len)`.
pub fn bitmap_set(map: &mut [u32], start: usize, len: usize) {
    set_range(map, start, len, true)
}

/// `bitmap_clear()`: clear bits `[start, start + len)`.
pub fn bitmap_clear(map: &mut [u32], start: usize, len: usize) {
    set_range(map, start, len, false)
}

fn set_range(map: &mut [u32], start: usize, len: usize, set: bool) {
    let mut pos = start;
    let end = start + len;
    while pos < end {
        let w = pos / BITS_PER_LONG;
        let lo = pos % BITS_PER_LONG;
        let n = (BITS_PER_LONG - lo).min(end - pos);
        let mask = if n == BITS_PER_LONG { u32::MAX } else { ((1u32 << n) - 1) << lo };
        if set {
            map[w] |= mask;
        } else {
            map[w] &= !mask;
        }
        pos += n;
    }
}

/// `bitmap_weight()`: set bits among the first `nbits`.
pub fn bitmap_weight(map: &[u32], nbits: usize) -> usize {
    let full = nbits / BITS_PER_LONG;
    let mut w: usize = map[..full].iter().map(|x| x.count_ones() as usize).sum();
    let rem = nbits % BITS_PER_LONG;
    if rem != 0 {
        w += (map[full] & ((1u32 << rem) - 1)).count_ones() as usize;
    }
    w
}

/// `__ALIGN_MASK()`.
#[inline]
const fn align_mask(x: usize, mask: usize) -> usize {
    (x.wrapping_add(mask)) & !mask
}

/// `bitmap_find_next_zero_area_off()`: the first index `>= start` of `nr`
/// clear bits below `size` such that `(index + align_offset)` is a multiple
/// of `align_mask + 1`. Returns a value `>= size` (the failed end) when
/// there is none, as Linux does.
pub fn bitmap_find_next_zero_area_off(
    map: &[u32],
    size: usize,
    mut start: usize,
    nr: usize,
    align_mask_v: usize,
    align_offset: usize,
) -> usize {
    loop {
        let mut index = find_next_zero_bit(map, size, start);
        // Align allocation
        index = align_mask(index + align_offset, align_mask_v).wrapping_sub(align_offset);
        let end = index + nr;
        if end > size {
            return end;
        }
        let i = find_next_bit(map, end, index);
        if i < end {
            start = i + 1;
            continue;
        }
        return index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_clear_find_weight() {
        let mut m = [0u32; 3];
        bitmap_set(&mut m, 30, 5);
        assert_eq!(m[0], 0xc000_0000);
        assert_eq!(m[1], 0x7);
        assert_eq!(bitmap_weight(&m, 96), 5);
        assert_eq!(bitmap_weight(&m, 33), 3);
        assert_eq!(find_next_bit(&m, 96, 0), 30);
        assert_eq!(find_next_zero_bit(&m, 96, 30), 35);
        bitmap_clear(&mut m, 31, 2);
        assert_eq!(m[0], 0x4000_0000);
        assert_eq!(m[1], 0x6);
        assert_eq!(find_next_bit(&m, 20, 0), 20);
        assert_eq!(find_next_zero_bit(&[u32::MAX; 2], 40, 3), 40);
        bitmap_set(&mut m, 32, 32);
        assert_eq!(m[1], u32::MAX);
    }

    #[test]
    fn zero_area_with_offset() {
        let mut m = [0u32; 2];
        bitmap_set(&mut m, 0, 3);
        // mask 3 (align 4), offset 1: index + 1 must be a multiple of 4
        assert_eq!(bitmap_find_next_zero_area_off(&m, 64, 0, 4, 3, 1), 3);
        assert_eq!(bitmap_find_next_zero_area_off(&m, 64, 0, 4, 3, 0), 4);
        // too big
        assert!(bitmap_find_next_zero_area_off(&m, 64, 0, 62, 0, 0) >= 64);
    }
}
