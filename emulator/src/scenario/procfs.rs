//! Parsers for Linux's `/proc/meminfo` and `/proc/vmstat` formats.
use std::collections::BTreeMap;

/// Named counters from one read of a /proc file, in the units it prints
/// (kB for meminfo; pages or events for vmstat).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters(pub BTreeMap<String, u64>);

impl Counters {
    pub fn get(&self, name: &str) -> Option<u64> {
        self.0.get(name).copied()
    }
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `MemTotal:        1035812 kB` lines (other lines are ignored).
pub fn parse_meminfo(text: &str) -> Counters {
    let mut m = BTreeMap::new();
    for l in text.lines() {
        let Some((k, v)) = l.split_once(':') else { continue };
        let k = k.trim();
        if k.is_empty() || k.contains(' ') {
            continue;
        }
        let v = v.trim();
        let v = v.strip_suffix("kB").unwrap_or(v).trim();
        if let Ok(n) = v.parse::<u64>() {
            m.insert(k.to_string(), n);
        }
    }
    Counters(m)
}

/// `nr_free_pages 12345` lines (other lines are ignored).
pub fn parse_vmstat(text: &str) -> Counters {
    let mut m = BTreeMap::new();
    for l in text.lines() {
        let mut it = l.split_ascii_whitespace();
        let (Some(k), Some(v), None) = (it.next(), it.next(), it.next()) else { continue };
        if !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        if let Ok(n) = v.parse::<u64>() {
            m.insert(k.to_string(), n);
        }
    }
    Counters(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_lines() {
        let c = parse_meminfo("# cat /proc/meminfo\r\nMemTotal:        1035812 kB\r\nCmaFree:           4096 kB\r\nHugePages_Total:       0\r\n# ");
        assert_eq!(c.get("MemTotal"), Some(1035812));
        assert_eq!(c.get("CmaFree"), Some(4096));
        assert_eq!(c.get("HugePages_Total"), Some(0));
        assert_eq!(c.0.len(), 3);
    }

    #[test]
    fn vmstat_lines() {
        let c = parse_vmstat("cat /proc/vmstat\nnr_free_pages 123\npgmigrate_success 7\n# ");
        assert_eq!(c.get("nr_free_pages"), Some(123));
        assert_eq!(c.get("pgmigrate_success"), Some(7));
        assert_eq!(c.0.len(), 2);
    }
}
