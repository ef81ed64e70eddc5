//! ROC curve and confusion matrix as PNG and SVG (plotters, with a bundled DejaVu Sans so no
//! system font or fontconfig is needed).

use crate::model::metrics::Confusion;
use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::Once;

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn font() {
    REGISTER.call_once(|| {
        // Registration only fails for a malformed font, which the bundled one is not.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting: {e:?}")
}

fn draw_roc<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    curve: &[(f64, f64, f64)],
    auc: f64,
    title: &str,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&area)
        .caption(format!("{title} (AUC {auc:.3})"), ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0f64..1.0, 0.0f64..1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("false-alarm rate")
        .y_desc("recall (true-positive rate)")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    chart.draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3))).map_err(err)?;
    chart
        .draw_series(LineSeries::new(curve.iter().map(|p| (p.0, p.1)), BLUE.stroke_width(2)))
        .map_err(err)?;
    area.present().map_err(err)?;
    Ok(())
}

fn draw_confusion<DB: DrawingBackend>(area: DrawingArea<DB, Shift>, c: &Confusion, title: &str) -> Result<()>
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE).map_err(err)?;
    // Categorical axes: x = predicted (0 no alarm, 1 alarm), y = actual (0 faulty, 1 normal).
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d((0i32..1).into_segmented(), (0i32..1).into_segmented())
        .map_err(err)?;
    let name = |v: &SegmentValue<i32>, a: &str, b: &str| match v {
        SegmentValue::CenterOf(0) => a.to_string(),
        SegmentValue::CenterOf(1) => b.to_string(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_label_formatter(&|v| name(v, "no alarm", "alarm"))
        .y_label_formatter(&|v| name(v, "faulty", "normal"))
        .x_desc("predicted")
        .y_desc("actual")
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    let cells = [(0, 0, c.fn_, "FN"), (1, 0, c.tp, "TP"), (0, 1, c.tn, "TN"), (1, 1, c.fp, "FP")];
    let max = cells.iter().map(|x| x.2).max().unwrap_or(1).max(1) as f64;
    chart
        .draw_series(cells.iter().map(|&(x, y, n, _)| {
            let shade = 0.1 + 0.6 * n as f64 / max;
            Rectangle::new(
                [
                    (SegmentValue::Exact(x), SegmentValue::Exact(y)),
                    (SegmentValue::Exact(x + 1), SegmentValue::Exact(y + 1)),
                ],
                BLUE.mix(shade).filled(),
            )
        }))
        .map_err(err)?;
    chart
        .draw_series(cells.iter().map(|&(x, y, n, tag)| {
            Text::new(
                format!("{tag} {n}"),
                (SegmentValue::CenterOf(x), SegmentValue::CenterOf(y)),
                ("sans-serif", 26).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center)),
            )
        }))
        .map_err(err)?;
    area.present().map_err(err)?;
    Ok(())
}

/// Writes `<stem>.png` and `<stem>.svg` of the ROC curve into `dir`.
pub fn roc(dir: &Path, stem: &str, curve: &[(f64, f64, f64)], auc: f64, title: &str) -> Result<()> {
    font();
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    draw_roc(BitMapBackend::new(&png, (640, 520)).into_drawing_area(), curve, auc, title)?;
    draw_roc(SVGBackend::new(&svg, (640, 520)).into_drawing_area(), curve, auc, title)
}

/// Writes `<stem>.png` and `<stem>.svg` of the confusion matrix into `dir`.
pub fn confusion(dir: &Path, stem: &str, c: &Confusion, title: &str) -> Result<()> {
    font();
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    draw_confusion(BitMapBackend::new(&png, (520, 460)).into_drawing_area(), c, title)?;
    draw_confusion(SVGBackend::new(&svg, (520, 460)).into_drawing_area(), c, title)
}
