//! Parser tests: good files, error positions, and a small fuzz.
use super::*;

const GOOD: &str = r#"name = "t"
seed = 5

[board]
ram = "256M"
bootargs = "console=ttyAMA0 cma=16M"
inject = ["skip_copy", "ignore_pin"]

[[step]]
send = "fill 8 {seed}"
expect_line = "pages mapped"

[[step]]
wait = "tick"
timeout_ms = 50

[[step]]
run_ms = 10

[[expect]]
line = "ok"
[[expect]]
counter = "meminfo.CmaFree >= 4096"
[[expect]]
counter = "vmstat.pgmigrate_success>0"
[[expect]]
no_violations = true
"#;

#[test]
fn parses_a_full_file() {
    let s = Scenario::parse("t.toml", GOOD).unwrap();
    assert_eq!(s.name, "t");
    assert_eq!(s.board.ram, Some(256 << 20));
    assert_eq!(s.board.inject, vec!["skip_copy", "ignore_pin"]);
    assert_eq!(s.steps.len(), 3);
    assert_eq!(s.steps[0].line, 9);
    assert_eq!(s.steps[1].action, Action::Wait("tick".into()));
    assert_eq!(s.steps[2].action, Action::RunMs(10));
    assert_eq!(
        s.expects[1],
        Expect::Counter(Counter { source: Source::Meminfo, field: "CmaFree".into(), op: Cmp::Ge, value: 4096 })
    );
    assert_eq!(s.expects[2], Expect::Counter(Counter { source: Source::Vmstat, field: "pgmigrate_success".into(), op: Cmp::Gt, value: 0 }));
    assert_eq!(s.expects[3], Expect::NoViolations);
    let v = s.with_seed(9);
    assert_eq!(v.steps[0].action, Action::Send { cmd: "fill 8 9".into(), repeat: 1 });
}

#[test]
fn unknown_field_names_line_and_step() {
    let src = "[[step]]\nsend = \"help\"\n\n[[step]]\nsend = \"a\"\n\n[[step]]\nsned = \"fill 8\"\n";
    let e = Scenario::parse("scenario.toml", src).unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.line, Some(8), "{msg}");
    assert!(msg.starts_with("scenario.toml:8: step 3: unknown field 'sned'"), "{msg}");
}

#[test]
fn semantic_errors_name_the_step_or_expect() {
    let e = Scenario::parse("s.toml", "[[step]]\nsend = \"a\"\n[[step]]\ntimeout_ms = 5\n").unwrap_err();
    assert_eq!((e.line, e.context.as_deref()), (Some(3), Some("step 2")), "{e}");
    assert!(e.message.contains("needs one of"), "{e}");
    let e = Scenario::parse("s.toml", "[[expect]]\nline = \"a\"\n[[expect]]\ncounter = \"meminfo.CmaFree ~ 3\"\n").unwrap_err();
    assert_eq!((e.line, e.context.as_deref()), (Some(4), Some("expect 2")), "{e}");
    let e = Scenario::parse("s.toml", "[board]\nram = \"7M\"\n").unwrap_err();
    assert_eq!(e.line, Some(2), "{e}");
    let e = Scenario::parse("s.toml", "[board]\nram = true\n").unwrap_err();
    assert!(e.to_string().starts_with("s.toml:2: board: ram:"), "{e}");
    let e = Scenario::parse("s.toml", "[[step]]\nsend = \"a\"\nwait = \"b\"\n").unwrap_err();
    assert!(e.message.contains("more than one"), "{e}");
    let e = Scenario::parse("s.toml", "x = \n").unwrap_err();
    assert_eq!(e.line, Some(1), "{e}");
    let e = Scenario::parse("s.toml", "[[step]]\nrun_ms = -1\n").unwrap_err();
    assert_eq!(e.line, Some(2), "{e}");
}

#[test]
fn counter_expressions() {
    for (s, op) in [("meminfo.A>=1", Cmp::Ge), ("meminfo.A <= 1", Cmp::Le), ("vmstat.x == 1", Cmp::Eq), ("vmstat.x != 1", Cmp::Ne), ("vmstat.x < 1", Cmp::Lt), ("vmstat.x = 1", Cmp::Eq)] {
        assert_eq!(Counter::parse(s).unwrap().op, op, "{s}");
    }
    assert!(Counter::parse("foo.A >= 1").is_err());
    assert!(Counter::parse("meminfo.A >= x").is_err());
    assert!(Counter::parse("meminfo >= 1").is_err());
    assert!(Counter::parse("").is_err());
}

/// Mutate the good file byte by byte and by splicing; the parser must
/// return Ok or Err, never panic, and every error must name the file.
#[test]
fn fuzz_parser_never_panics() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let alphabet = b"[]=\"'{}.,#\n 0123456789abcdefstepxn_-<>!+\\\t\x00\xff";
    let base = GOOD.as_bytes();
    for _ in 0..3000 {
        let mut b = base.to_vec();
        for _ in 0..(rnd() % 8 + 1) {
            if b.is_empty() {
                break;
            }
            let i = (rnd() as usize) % b.len();
            match rnd() % 4 {
                0 => b[i] = alphabet[(rnd() as usize) % alphabet.len()],
                1 => {
                    b.remove(i);
                }
                2 => b.insert(i, alphabet[(rnd() as usize) % alphabet.len()]),
                _ => {
                    let j = (rnd() as usize) % b.len();
                    let (lo, hi) = (i.min(j), i.max(j));
                    let chunk = b[lo..hi.min(lo + 40)].to_vec();
                    let k = (rnd() as usize) % b.len();
                    b.splice(k..k, chunk);
                }
            }
        }
        let src = String::from_utf8_lossy(&b);
        if let Err(e) = Scenario::parse("f.toml", &src) {
            assert!(e.to_string().starts_with("f.toml"), "{e}");
        }
    }
}

#[test]
fn escapes() {
    assert_eq!(xml_escape("a<b>&\"'\u{8}\r"), "a&lt;b&gt;&amp;&quot;&apos;&#13;");
    assert_eq!(json_string("a\"\\\n\u{1}"), "\"a\\\"\\\\\\n\\u0001\"");
}

#[test]
fn expect_cause_takes_a_kind_or_a_kind_and_pfn_and_names_a_bad_one() {
    let v = Scenario::parse("s.toml", "[[step]]\nsend = \"a\"\nexpect_cause = [\"pinned\", \"lru_batch 0x6fe62\"]\n").unwrap();
    assert_eq!(v.steps[0].expect_cause, ["pinned", "lru_batch 0x6fe62"]);
    for bad in ["\"pined\"", "\"pinned 6d040\"", "\"pinned 0x6d040 x\"", "3"] {
        let e = Scenario::parse("s.toml", &format!("[[step]]\nsend = \"a\"\nexpect_cause = {bad}\n")).unwrap_err();
        assert_eq!((e.line, e.context.as_deref()), (Some(3), Some("step 1")), "{bad}: {e}");
        assert!(e.message.starts_with("expect_cause: "), "{bad}: {e}");
    }
}
