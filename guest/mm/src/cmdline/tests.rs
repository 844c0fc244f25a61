use super::*;

fn args(s: &str) -> Vec<(&str, Option<&str>)> {
    Args::new(s).collect()
}

#[test]
fn memparse_suffixes() {
    assert_eq!(memparse("4M"), (4 << 20, ""));
    assert_eq!(memparse("4m"), (4 << 20, ""));
    assert_eq!(memparse("16K"), (16 << 10, ""));
    assert_eq!(memparse("1G"), (1 << 30, ""));
    assert_eq!(memparse("2T"), (2 << 40, ""));
    assert_eq!(memparse("1P"), (1 << 50, ""));
    assert_eq!(memparse("1E"), (1 << 60, ""));
    assert_eq!(memparse("128"), (128, ""));
    assert_eq!(memparse("4M@0x69000000"), (4 << 20, "@0x69000000"));
}

#[test]
fn memparse_prefixes_like_simple_strtoull_base0() {
    assert_eq!(memparse("0x69000000"), (0x6900_0000, ""));
    assert_eq!(memparse("0X10"), (16, ""));
    assert_eq!(memparse("010"), (8, ""));
    assert_eq!(memparse("0"), (0, ""));
    // octal stops at 8
    assert_eq!(memparse("018"), (1, "8"));
    // "0x" without a hex digit: only "0" parses
    assert_eq!(memparse("0xg"), (0, "xg"));
    assert_eq!(memparse("0x"), (0, "x"));
    // hex value with suffix
    assert_eq!(memparse("0x10M"), (16 << 20, ""));
    // no digits at all
    assert_eq!(memparse("abc"), (0, "abc"));
    assert_eq!(memparse(""), (0, ""));
}

#[test]
fn memparse_overflow_wraps_like_linux() {
    assert_eq!(memparse("16E"), (0, ""));
}

#[test]
fn strict_parsers_reject_garbage() {
    assert_eq!(memparse_strict("4M"), Some(4 << 20));
    assert_eq!(memparse_strict("4MB"), None);
    assert_eq!(memparse_strict("M"), None);
    assert_eq!(parse_uint_strict("12"), Some(12));
    assert_eq!(parse_uint_strict("0xc"), Some(12));
    assert_eq!(parse_uint_strict("12a"), None);
    assert_eq!(parse_uint_strict(""), None);
    assert_eq!(parse_uint_strict("-1"), None);
}

#[test]
fn next_arg_plain_and_spaces() {
    assert_eq!(
        args("  console=ttyAMA0  root=/dev/mmcblk0 rw  "),
        vec![("console", Some("ttyAMA0")), ("root", Some("/dev/mmcblk0")), ("rw", None)]
    );
}

#[test]
fn next_arg_quotes_like_linux() {
    assert_eq!(args(r#"a="b c" d"#), vec![("a", Some("b c")), ("d", None)]);
    assert_eq!(args(r#""a=b c" d"#), vec![("a", Some("b c")), ("d", None)]);
    assert_eq!(args(r#""quoted param" x"#), vec![("quoted param", None), ("x", None)]);
    // a quote in the middle of the value is kept, and groups spaces
    assert_eq!(args(r#"a=b"c d" e"#), vec![("a", Some(r#"b"c d""#)), ("e", None)]);
    // unterminated quote runs to the end
    assert_eq!(args(r#"a="b c"#), vec![("a", Some("b c"))]);
}

#[test]
fn next_arg_first_equals_splits() {
    assert_eq!(args("trace_event=cma:*,migrate:mm_migrate_pages"), vec![("trace_event", Some("cma:*,migrate:mm_migrate_pages"))]);
    assert_eq!(args("a=b=c"), vec![("a", Some("b=c"))]);
    assert_eq!(args("a="), vec![("a", Some(""))]);
}

#[test]
fn double_dash_ends_kernel_params() {
    assert_eq!(args("a=1 -- init_arg=2"), vec![("a", Some("1"))]);
}

#[test]
fn parameq_dash_underscore() {
    assert!(parameq("coherent_pool", "coherent-pool"));
    assert!(!parameq("cma", "cmaa"));
}

#[test]
fn early_cma_forms() {
    let (c, w) = early_cma(Some("4M@0x69000000-0x69800000")).unwrap();
    assert_eq!(c, CmaCmdline { size: 4 << 20, base: 0x6900_0000, limit: 0x6980_0000 });
    assert!(w.is_none());
    let (c, _) = early_cma(Some("8M@0x69000000")).unwrap();
    assert_eq!(c, CmaCmdline { size: 8 << 20, base: 0x6900_0000, limit: 0x6980_0000 });
    let (c, _) = early_cma(Some("64M")).unwrap();
    assert_eq!(c, CmaCmdline { size: 64 << 20, base: 0, limit: 0 });
    let (c, w) = early_cma(Some("0")).unwrap();
    assert_eq!(c.size, 0);
    assert!(w.is_none());
}

#[test]
fn early_cma_errors() {
    assert_eq!(early_cma(None), Err(EarlyCmaError::NoValue));
    assert_eq!(EarlyCmaError::NoValue.to_string(), "cma: Config string not provided");
    // Linux keeps the parsed prefix; we do too, and say so
    let (c, w) = early_cma(Some("4MB")).unwrap();
    assert_eq!(c.size, 4 << 20);
    let w = w.unwrap();
    assert_eq!(w, EarlyCmaError::TrailingGarbage { value: "4MB", rest: "B" });
    assert!(w.to_string().starts_with("cma=4MB: ignoring trailing characters \"B\""));
    let (c, w) = early_cma(Some("lots")).unwrap();
    assert_eq!(c.size, 0);
    assert!(w.is_some());
    let (_, w) = early_cma(Some("4M@0x69000000-0x6980000z")).unwrap();
    assert!(w.is_some());
}

#[test]
fn fixed_str_truncates_on_char_boundary() {
    let (s, t) = FixedStr::<4>::from_str_truncate("abcdef");
    assert_eq!((s.as_str(), t), ("abcd", true));
    let (s, t) = FixedStr::<4>::from_str_truncate("ab\u{e9}\u{e9}");
    assert_eq!((s.as_str(), t), ("ab\u{e9}", true));
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn tokenizer_and_parsers_never_panic(s in "[ a-z0-9=\"@xKMG.,_:-]{0,64}") {
            for (p, v) in Args::new(&s) {
                let _ = memparse(p);
                if let Some(v) = v {
                    let _ = early_cma(Some(v));
                    let _ = memparse_strict(v);
                }
            }
        }

        #[test]
        fn memparse_roundtrips_decimal(n in 0u64..(1 << 40), suf in 0usize..4) {
            let (sfx, sh) = [("", 0), ("K", 10), ("M", 20), ("G", 30)][suf];
            let s = format!("{n}{sfx}");
            prop_assert_eq!(memparse(&s), (n << sh, ""));
            let h = format!("{n:#x}{sfx}");
            prop_assert_eq!(memparse(&h), (n << sh, ""));
        }
    }
}
