//! The reduced catch matrix (what CI runs; `cmaemu matrix` runs the full
//! one): every fault injection on the small-RAM workload, in the booted
//! guest. Each must fire, each must be caught by the check that exists for
//! it, and the clean run must report nothing.
use cmaemu::scenario::matrix;

/// The check that must catch each injection (others may join in).
const EXPECTED: [(&str, &str); 18] = [
    ("skip_tlb_flush", "migrate.tlb"),
    ("skip_copy", "migrate.content"),
    ("dma_noncontig", "dma.contiguity"),
    ("dma_after_free", "dma.contiguity"),
    ("leak_isolation", "integrity.isolation"),
    ("leak_bitmap", "integrity.cma_bitmap"),
    ("wrong_migratetype", "integrity.pageblock"),
    ("double_free", "pte.maps_free"),
    ("skip_remap", "migrate.pte"),
    ("leak_old_page", "migrate.old_page"),
    ("ignore_pin", "migrate.old_page"),
    ("missed_put_page", "integrity.ownership"),
    ("leaked_pin", "integrity.ownership"),
    ("rmap_miss", "pte.maps_free"),
    ("dma_during_migration", "dma.migrating"),
    ("skip_lru_drain", "migrate.lru_drain"),
    ("skip_pcp_drain", "migrate.pcp_drain"),
    ("pgtable_movable", "integrity.cma_unmovable"),
];

#[test]
fn every_injection_fires_and_is_caught_by_its_check_in_the_quick_matrix() {
    let names = matrix::injections();
    assert_eq!(names.len(), EXPECTED.len(), "an injection without an expected check: {names:?}");
    let workloads: Vec<(String, String)> = matrix::WORKLOADS
        .iter()
        .filter(|(n, _)| matrix::QUICK_WORKLOADS.contains(n))
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect();
    let mut inj: Vec<Option<String>> = vec![None];
    inj.extend(names.iter().map(|n| Some(n.to_string())));
    let cells = matrix::run_matrix(&workloads, &inj, 2, None, |_| {});
    let table = matrix::format_table(&cells);
    let (problems, _) = matrix::verdict(&cells);
    assert!(problems.is_empty(), "{problems:?}\n{table}");
    let clean = cells.iter().find(|c| c.injection.is_none()).unwrap();
    assert_eq!(clean.violations.total, 0, "{table}");
    for (name, check) in EXPECTED {
        let c = cells.iter().find(|c| c.injection.as_deref() == Some(name)).unwrap();
        assert!(c.fired > 0, "{name} never fired\n{table}");
        assert!(c.violations.per_check.keys().any(|k| k.name() == check), "{name} was not caught by {check}\n{table}");
        assert!(c.latency_ns().is_some_and(|l| l >= 0), "{name}: a violation before the firing?\n{table}");
    }
}
