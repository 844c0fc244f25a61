//! The verdict as a PNG: pass rate (top) and median/worst CMA allocation
//! latency (bottom) against the sized axis, one line per combination of
//! the other axes. Drawn with `plotters` (bitmap backend, DejaVu Sans
//! embedded), encoded with `png`: the same verdict gives the same bytes.
use super::verdict::{Combination, Plan};
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::collections::BTreeMap;

const W: u32 = 1000;
const H: u32 = 760;

/// Why a plot could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("plot: {0}")]
    Draw(String),
    #[error("plot: PNG encoding: {0}")]
    Png(#[from] png::EncodingError),
}

fn draw_err<E: std::fmt::Debug>(e: E) -> PlotError {
    PlotError::Draw(format!("{e:?}"))
}

/// One line of the plot: the other axes' values and a point per x.
struct Series {
    label: String,
    points: Vec<(usize, &'static str, f64, Option<f64>, Option<f64>)>,
}

/// The x labels and series of a verdict.
fn series(plan: &Plan, combos: &[Combination]) -> (Vec<String>, Vec<Series>) {
    let Some(si) = plan.size_axis else {
        // no sized axis: one point per combination
        let labels: Vec<String> = combos.iter().map(|c| c.params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")).collect();
        let s = Series { label: "all".into(), points: combos.iter().enumerate().map(|(i, c)| point(i, c)).collect() };
        return (labels, vec![s]);
    };
    let axis = &plan.axes[si];
    let mut xs: Vec<&String> = axis.values.iter().collect();
    xs.sort_by_key(|v| axis.number(v).unwrap_or(u64::MAX));
    let mut groups: Vec<(BTreeMap<String, String>, Series)> = Vec::new();
    for c in combos {
        let mut given = c.params.clone();
        given.remove(&axis.name);
        let x = xs.iter().position(|v| **v == c.params[&axis.name]).unwrap_or(0);
        let label = if given.is_empty() { axis.name.clone() } else { given.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ") };
        match groups.iter_mut().find(|(g, _)| *g == given) {
            Some((_, s)) => s.points.push(point(x, c)),
            None => groups.push((given, Series { label, points: vec![point(x, c)] })),
        }
    }
    let mut out: Vec<Series> = groups.into_iter().map(|(_, s)| s).collect();
    for s in &mut out {
        s.points.sort_by_key(|p| p.0);
    }
    (xs.into_iter().map(|v| format!("{}={v}", axis.name)).collect(), out)
}

fn point(x: usize, c: &Combination) -> (usize, &'static str, f64, Option<f64>, Option<f64>) {
    let ms = |n: Option<u64>| n.map(|n| n as f64 / 1e6);
    (x, "", c.pass_rate * 100.0, ms(c.alloc_median_ns), ms(c.alloc_worst_ns))
}

/// Draw the verdict; returns PNG bytes.
pub fn plot_png(plan: &Plan, combos: &[Combination]) -> Result<Vec<u8>, PlotError> {
    // Registering twice is harmless (the map keeps one font per style).
    plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular()).map_err(|_| PlotError::Draw("the embedded DejaVu Sans font is not a font".into()))?;
    let mut buf = vec![0u8; (W * H * 3) as usize];
    let (labels, series) = series(plan, combos);
    {
        let root = BitMapBackend::with_buffer(&mut buf, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let title = format!("cmaemu sweep: {} ({} seeds)", plan.scenario, plan.seeds.end - plan.seeds.start);
        let root = root.titled(&title, ("sans-serif", 22)).map_err(draw_err)?;
        let (top, bottom) = root.split_vertically(H / 2 - 20);
        let n = labels.len().max(1);
        let xr = -0.5f64..(n as f64 - 0.5);
        let fmt_x = |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 { labels.get(i as usize).cloned().unwrap_or_default() } else { String::new() }
        };
        let mut c = ChartBuilder::on(&top)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .caption("runs passing every check (%)", ("sans-serif", 16))
            .build_cartesian_2d(xr.clone(), 0f64..105f64)
            .map_err(draw_err)?;
        c.configure_mesh().x_labels(n.min(12)).x_label_formatter(&fmt_x).y_desc("pass %").label_style(("sans-serif", 13)).draw().map_err(draw_err)?;
        for (i, s) in series.iter().enumerate() {
            let col = Palette99::pick(i).to_rgba();
            c.draw_series(LineSeries::new(s.points.iter().map(|p| (p.0 as f64, p.2)), col.stroke_width(2)))
                .map_err(draw_err)?
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2)));
            c.draw_series(s.points.iter().map(|p| Circle::new((p.0 as f64, p.2), 4, col.filled()))).map_err(draw_err)?;
        }
        c.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).label_font(("sans-serif", 13)).draw().map_err(draw_err)?;
        let ymax = series.iter().flat_map(|s| s.points.iter().filter_map(|p| p.4)).fold(0.0f64, f64::max).max(0.001) * 1.1;
        let mut c = ChartBuilder::on(&bottom)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .caption("CMA allocation latency, virtual ms (solid: worst, dots: median)", ("sans-serif", 16))
            .build_cartesian_2d(xr, 0f64..ymax)
            .map_err(draw_err)?;
        c.configure_mesh().x_labels(n.min(12)).x_label_formatter(&fmt_x).y_desc("ms").label_style(("sans-serif", 13)).draw().map_err(draw_err)?;
        for (i, s) in series.iter().enumerate() {
            let col = Palette99::pick(i).to_rgba();
            c.draw_series(LineSeries::new(s.points.iter().filter_map(|p| Some((p.0 as f64, p.4?))), col.stroke_width(2))).map_err(draw_err)?;
            c.draw_series(s.points.iter().filter_map(|p| Some(Circle::new((p.0 as f64, p.3?), 4, col.filled())))).map_err(draw_err)?;
        }
        root.present().map_err(draw_err)?;
    }
    let mut png_bytes = Vec::new();
    {
        let mut e = png::Encoder::new(&mut png_bytes, W, H);
        e.set_color(png::ColorType::Rgb);
        e.set_depth(png::BitDepth::Eight);
        let mut w = e.write_header()?;
        w.write_image_data(&buf)?;
    }
    Ok(png_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{RunRecord, Scenario};

    #[test]
    fn a_png_of_the_verdict_and_deterministic() {
        let sc = Scenario::parse("t.toml", "[sweep]\nseeds = \"0..2\"\n[sweep.axes]\ncma = \"4M,8M,16M\"\nram = \"128M,256M\"\n").unwrap();
        let p = Plan::new(&sc, "sha256:x".into(), vec![], None, None).unwrap();
        let runs: Vec<RunRecord> = (0..p.runs())
            .map(|i| {
                let (c, seed) = p.run(i);
                RunRecord {
                    run: i,
                    seed,
                    params: p.params(c),
                    pass: c > 1,
                    status: if c > 1 { "pass" } else { "fail" }.into(),
                    cause: None,
                    reasons: vec![],
                    virtual_ns: 0,
                    insns: 0,
                    alloc_ns: vec![1_000_000 * (6 - c), 500_000],
                    alloc_errors: vec![],
                    frames_shown: 0,
                    frames_dropped: 0,
                }
            })
            .collect();
        let (combos, _) = p.verdict(&runs);
        let a = plot_png(&p, &combos).unwrap();
        let b = plot_png(&p, &combos).unwrap();
        assert_eq!(a, b);
        let d = png::Decoder::new(std::io::Cursor::new(&a));
        let mut r = d.read_info().unwrap();
        let mut img = vec![0; r.output_buffer_size()];
        let info = r.next_frame(&mut img).unwrap();
        assert_eq!((info.width, info.height), (W, H));
        // something was drawn beyond the white background: text and lines
        let non_white = img.chunks(3).filter(|p| p != &[255, 255, 255]).count();
        assert!(non_white > 10_000, "{non_white} non-white pixels");
        // colored series pixels (not only black/grey text and mesh)
        assert!(img.chunks(3).any(|p| p[0] != p[1] || p[1] != p[2]), "no series drawn");
    }

    #[test]
    fn verdict_html_inlines_the_table_and_the_plot() {
        let png = [0x89u8, b'P', b'N', b'G', 1, 2, 3];
        let html = super::super::driver::verdict_html_for_test("a<b", "cma  runs\n8M & more", &png);
        assert!(html.contains("8M &amp; more"), "{html}");
        assert!(html.contains("a&lt;b"));
        assert!(!html.contains("http"), "a self-contained page loads nothing");
        use base64::Engine as _;
        let b64 = html.split("data:image/png;base64,").nth(1).and_then(|r| r.split('"').next()).unwrap();
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(b64).unwrap(), png);
    }
}
