//! [`Vas`]: the VAs of one migrated page, held in place.
use cmaemu_abi::trace::MIGRATE_VAS_PER_RECORD;

/// The VAs that mapped a migrated page ([`EventKind::MigratePage`](super::EventKind::MigratePage)).
/// Up to [`Vas::INLINE`] — one ring record's worth, almost every page —
/// are held in place (an event made, cloned or dropped allocates nothing);
/// a page with more mappings (continuation records) keeps them on the
/// heap. It reads as a `[u32]` (`Deref`), compares and prints as one
/// whatever it holds them in.
#[derive(Clone)]
pub struct Vas(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, vas: [u32; Vas::INLINE] },
    Heap(Vec<u32>),
}

impl Vas {
    /// VAs held without an allocation.
    pub const INLINE: usize = MIGRATE_VAS_PER_RECORD;

    /// No VAs.
    pub const fn new() -> Self {
        Vas(Repr::Inline { len: 0, vas: [0; Vas::INLINE] })
    }

    /// A copy of `s`.
    pub fn from_slice(s: &[u32]) -> Self {
        if s.len() <= Vas::INLINE {
            let mut vas = [0; Vas::INLINE];
            vas[..s.len()].copy_from_slice(s);
            Vas(Repr::Inline { len: s.len() as u8, vas })
        } else {
            Vas(Repr::Heap(s.to_vec()))
        }
    }

    /// Append `s` (a continuation record's VAs).
    pub fn extend_from_slice(&mut self, s: &[u32]) {
        match &mut self.0 {
            Repr::Inline { len, vas } if *len as usize + s.len() <= Vas::INLINE => {
                let n = *len as usize;
                vas[n..n + s.len()].copy_from_slice(s);
                *len += s.len() as u8;
            }
            Repr::Inline { len, vas } => {
                let mut v = Vec::with_capacity(*len as usize + s.len());
                v.extend_from_slice(&vas[..*len as usize]);
                v.extend_from_slice(s);
                self.0 = Repr::Heap(v);
            }
            Repr::Heap(v) => v.extend_from_slice(s),
        }
    }

    pub fn as_slice(&self) -> &[u32] {
        match &self.0 {
            Repr::Inline { len, vas } => &vas[..*len as usize],
            Repr::Heap(v) => v,
        }
    }
}

impl Default for Vas {
    fn default() -> Self {
        Vas::new()
    }
}

impl std::ops::Deref for Vas {
    type Target = [u32];
    fn deref(&self) -> &[u32] {
        self.as_slice()
    }
}

impl PartialEq for Vas {
    fn eq(&self, o: &Vas) -> bool {
        self.as_slice() == o.as_slice()
    }
}

impl Eq for Vas {}

impl std::fmt::Debug for Vas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_slice().fmt(f)
    }
}

impl From<&[u32]> for Vas {
    fn from(s: &[u32]) -> Self {
        Vas::from_slice(s)
    }
}

impl From<Vec<u32>> for Vas {
    fn from(v: Vec<u32>) -> Self {
        if v.len() <= Vas::INLINE {
            Vas::from_slice(&v)
        } else {
            Vas(Repr::Heap(v))
        }
    }
}

impl FromIterator<u32> for Vas {
    fn from_iter<I: IntoIterator<Item = u32>>(it: I) -> Self {
        let mut out = Vas::new();
        for va in it {
            out.extend_from_slice(&[va]);
        }
        out
    }
}

impl<'a> IntoIterator for &'a Vas {
    type Item = &'a u32;
    type IntoIter = std::slice::Iter<'a, u32>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

#[cfg(test)]
mod tests {
    use super::Vas;

    /// Whatever the lengths and the way a list was built (at once, record
    /// by record, collected), it holds, compares and prints as the same
    /// `Vec<u32>` would.
    #[test]
    fn reads_compares_and_prints_as_the_vec_it_replaces() {
        for n in 0..=11u32 {
            let want: Vec<u32> = (0..n).map(|i| 0x40_0000 + i * 0x1000).collect();
            let at_once = Vas::from_slice(&want);
            let collected: Vas = want.iter().copied().collect();
            let from_vec = Vas::from(want.clone());
            let mut by_record = Vas::new();
            for chunk in want.chunks(Vas::INLINE) {
                by_record.extend_from_slice(chunk);
            }
            let mut odd = Vas::from_slice(&want[..want.len().min(3)]);
            odd.extend_from_slice(&want[want.len().min(3)..]);
            for v in [&at_once, &collected, &from_vec, &by_record, &odd] {
                assert_eq!(&v[..], &want[..], "n={n}");
                assert_eq!(v.len(), want.len());
                assert_eq!(v.first(), want.first());
                assert_eq!(format!("{v:?}"), format!("{want:?}"));
                assert_eq!(v, &at_once);
                assert_eq!(v.clone(), at_once);
                assert_eq!(v.iter().sum::<u32>(), want.iter().sum::<u32>());
            }
            assert_ne!(at_once, Vas::from_slice(&[1; 12][..n as usize + 1]));
        }
        assert_eq!(Vas::default(), Vas::new());
        assert!(Vas::new().is_empty());
    }
}
