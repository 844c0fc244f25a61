//! Result writers: JUnit XML and JSON lines (hand-escaped; no XML/JSON
//! dependency for two tiny formats).
use super::run::{ScenarioResult, Status};
use std::fmt::Write;

/// Escape text for XML attribute values and character data; characters
/// XML 1.0 does not allow (most C0 controls, e.g. the console's backspaces
/// and escape sequences) are dropped.
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' | '\n' => o.push(c),
            '\r' => o.push_str("&#13;"),
            c if (c as u32) < 0x20 => {}
            '\u{fffe}' | '\u{ffff}' => {}
            c => o.push(c),
        }
    }
    o
}

/// A JUnit XML report (one testsuite, one testcase per result).
pub fn junit_xml(suite: &str, results: &[ScenarioResult]) -> String {
    let failures = results.iter().filter(|r| r.status == Status::Fail).count();
    let skipped = results.iter().filter(|r| r.status == Status::Skipped).count();
    let time: f64 = results.iter().map(|r| r.wall.as_secs_f64()).sum();
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time:.3}\">",
        xml_escape(suite),
        results.len()
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time:.3}\">",
        xml_escape(suite),
        results.len()
    );
    for r in results {
        let file = r.file.as_deref().map(|f| format!(" file=\"{}\"", xml_escape(f))).unwrap_or_default();
        let _ = write!(
            x,
            "    <testcase classname=\"{}\" name=\"{}\"{file} time=\"{:.3}\"",
            xml_escape(suite),
            xml_escape(&r.name),
            r.wall.as_secs_f64()
        );
        match r.status {
            Status::Pass => {
                let _ = writeln!(
                    x,
                    ">\n      <system-out>virtual_ns={} insns={}</system-out>\n    </testcase>",
                    r.virtual_ns, r.insns
                );
            }
            Status::Skipped => {
                let _ = writeln!(x, ">\n      <skipped message=\"{}\"/>\n    </testcase>", xml_escape(&r.reasons.join("; ")));
            }
            Status::Fail => {
                let msg = r.reasons.first().cloned().unwrap_or_else(|| "failed".into());
                let mut body = r.reasons.join("\n");
                if !r.console_tail.is_empty() {
                    body.push_str("\n\nlast console lines:\n");
                    body.push_str(&r.console_tail.join("\n"));
                }
                let _ = writeln!(
                    x,
                    ">\n      <failure message=\"{}\" type=\"ScenarioFailure\">{}</failure>\n    </testcase>",
                    xml_escape(&msg),
                    xml_escape(&body)
                );
            }
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// Escape a JSON string (with the quotes): the trace writers' escaper.
pub use crate::trace::jsonl::json_str as json_string;

/// One JSON line for a sweep: seed, pass, reasons, virtual time, instructions.
pub fn json_line(r: &ScenarioResult) -> String {
    let reasons: Vec<String> = r.reasons.iter().map(|s| json_string(s)).collect();
    let status = match r.status {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::Skipped => "skipped",
    };
    format!(
        "{{\"seed\":{},\"scenario\":{},\"pass\":{},\"status\":\"{status}\",\"reasons\":[{}],\"virtual_ns\":{},\"insns\":{},\"wall_ms\":{}}}",
        r.seed,
        json_string(&r.name),
        r.status == Status::Pass,
        reasons.join(","),
        r.virtual_ns,
        r.insns,
        r.wall.as_millis()
    )
}
