//! `timeline.svg`: the run as a picture, drawn with plotters.
//!
//! Lanes, top to bottom: each service's state (up, process down, proxies down) with the steps;
//! for each worker, its connections (working ones as bars, failed attempts as red crosses) and,
//! beside them, the schedule's expected windows (shaded) with each observed attempt (green
//! inside its window, red outside); then processed messages per second.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::json::Report;
use crate::check::{connections, outages};
use crate::timeline::Timeline;

const W: u32 = 1200;
const LANE_PX: u32 = 46;
const RATE_PX: u32 = 200;
const LABEL_PX: u32 = 150;

const UP: RGBColor = RGBColor(0x4c, 0xaf, 0x50);
const UP_LIGHT: RGBColor = RGBColor(0xc8, 0xe6, 0xc9);
const DOWN: RGBColor = RGBColor(0xd3, 0x2f, 0x2f);
const PROXY_DOWN: RGBColor = RGBColor(0xf5, 0x7c, 0x00);
const WORKING: RGBColor = RGBColor(0x1e, 0x66, 0xc8);
const WINDOW: RGBColor = RGBColor(0x9e, 0x9e, 0x9e);
const INK: RGBColor = RGBColor(0x21, 0x21, 0x21);
const PALETTE: [RGBColor; 4] = [
    RGBColor(0x1e, 0x66, 0xc8),
    RGBColor(0x8e, 0x24, 0xaa),
    RGBColor(0x00, 0x89, 0x7b),
    RGBColor(0xef, 0x6c, 0x00),
];

/// Why the picture could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the timeline: {0}")]
pub struct DrawError(String);

fn draw_err<E: std::fmt::Debug>(e: E) -> DrawError {
    DrawError(format!("{e:?}"))
}

enum Lane {
    Service(String),
    /// (proxy, worker, service)
    Connections(String, String, String),
    /// (worker, service)
    Schedule(String, String),
}

/// The SVG text of a run's timeline.
pub fn svg(report: &Report, timeline: &Timeline) -> Result<String, DrawError> {
    let mut lanes = Vec::new();
    let mut services: Vec<&str> = timeline.routes.iter().map(|r| r.service.as_str()).collect();
    services.dedup();
    for s in &services {
        lanes.push(Lane::Service((*s).to_owned()));
    }
    for r in &timeline.routes {
        lanes.push(Lane::Connections(
            r.proxy.clone(),
            r.worker.clone(),
            r.service.clone(),
        ));
        if report
            .backoff
            .iter()
            .any(|e| e.worker == r.worker && e.service == r.service)
        {
            lanes.push(Lane::Schedule(r.worker.clone(), r.service.clone()));
        }
    }
    let lanes_px = 107 + LANE_PX * lanes.len() as u32;
    let height = lanes_px + RATE_PX;
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (W, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let (top, bottom) = root.split_vertically(lanes_px);
        let end_ms = (report.duration_ms.max(1.0) * 1.02).ceil();
        draw_lanes(&top, &lanes, report, timeline, end_ms)?;
        draw_rate(&bottom, report, end_ms)?;
        root.present().map_err(draw_err)?;
    }
    Ok(buf)
}

fn draw_lanes(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    lanes: &[Lane],
    report: &Report,
    timeline: &Timeline,
    end_ms: f64,
) -> Result<(), DrawError> {
    let n = lanes.len() as f64;
    let verdict = report.outcome;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{verdict} {}", report.scenario),
            ("sans-serif", 20).into_font().color(&INK),
        )
        .margin(10)
        .margin_right(20)
        .x_label_area_size(62)
        .y_label_area_size(LABEL_PX)
        .build_cartesian_2d(0f64..end_ms, 0f64..n)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(draw_err)?;
    legend(area, chart.plotting_area().get_pixel_range().0.start)?;
    // Lane i is drawn from the top.
    let band = |i: usize, lo: f64, hi: f64| (n - i as f64 - 1.0 + lo, n - i as f64 - 1.0 + hi);
    let ms = |ns: u64| ns as f64 / 1e6;
    let conns = connections(timeline);
    let outs = outages(timeline);
    // A worker that talks to several services has its lanes named after each.
    let several = |w: &str| timeline.routes.iter().filter(|r| r.worker == w).count() > 1;
    for (i, lane) in lanes.iter().enumerate() {
        let (y0, y1) = band(i, 0.3, 0.7);
        let (_, cy) = chart.backend_coord(&(0.0, (y0 + y1) / 2.0));
        for (k, line) in lane_label(lane, &several).iter().enumerate() {
            area.draw(&Text::new(
                line.clone(),
                (12, cy - 6 + 15 * k as i32),
                ("sans-serif", 13).into_font().color(&INK),
            ))
            .map_err(draw_err)?;
        }
        match lane {
            Lane::Service(s) => {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(0.0, y0), (end_ms, y1)],
                        UP_LIGHT.filled(),
                    )))
                    .map_err(draw_err)?;
                for o in outs.iter().filter(|o| {
                    &o.target == s
                        || crate::scenario::split_link(&o.target).is_some_and(|(_, svc)| svc == s)
                }) {
                    let from = ms(o.down_at_ns);
                    let to = o.restored_at_ns.map_or(end_ms, ms);
                    let color = if o.fault == "down" { PROXY_DOWN } else { DOWN };
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(from, y0), (to, y1)],
                            color.mix(0.85).filled(),
                        )))
                        .map_err(draw_err)?;
                    let text = format!(
                        "{} → {}",
                        o.fault,
                        o.restored_by.as_deref().unwrap_or("never restored")
                    );
                    chart
                        .draw_series(std::iter::once(Text::new(
                            text,
                            (from, band(i, 0.95, 0.95).0),
                            ("sans-serif", 11).into_font().color(&INK),
                        )))
                        .map_err(draw_err)?;
                }
            }
            Lane::Connections(proxy, _, _) => {
                let cs = conns
                    .get(proxy.as_str())
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                chart
                    .draw_series(cs.iter().filter(|c| c.answered).map(|c| {
                        Rectangle::new(
                            [
                                (ms(c.accepted_ns), y0),
                                (c.closed_ns.map_or(end_ms, ms), y1),
                            ],
                            WORKING.mix(0.8).filled(),
                        )
                    }))
                    .map_err(draw_err)?;
                chart
                    .draw_series(
                        cs.iter()
                            .filter(|c| !c.answered)
                            .map(|c| Cross::new((ms(c.accepted_ns), (y0 + y1) / 2.0), 5, DOWN)),
                    )
                    .map_err(draw_err)?;
            }
            Lane::Schedule(w, service) => {
                for e in report
                    .backoff
                    .iter()
                    .filter(|e| &e.worker == w && &e.service == service)
                {
                    for a in &e.attempts {
                        let from = a.at_ms - a.gap_ms;
                        // The wait: from the previous failure to the attempt.
                        let mid = (y0 + y1) / 2.0;
                        chart
                            .draw_series(std::iter::once(PathElement::new(
                                vec![(from, mid), (a.at_ms, mid)],
                                WINDOW.stroke_width(1),
                            )))
                            .map_err(draw_err)?;
                        if let Some((lo, hi)) = a.expected_ms {
                            // A window without jitter is a moment: keep it visible.
                            let min_w = end_ms / 250.0;
                            let (l, h) = (from + lo, (from + hi).max(from + lo + min_w));
                            chart
                                .draw_series(std::iter::once(Rectangle::new(
                                    [(l, y0 - 0.1), (h, y1 + 0.1)],
                                    WINDOW.mix(0.6).filled(),
                                )))
                                .map_err(draw_err)?;
                        }
                        let color = match a.within {
                            Some(false) => DOWN,
                            Some(true) => UP,
                            None => INK,
                        };
                        chart
                            .draw_series(std::iter::once(TriangleMarker::new(
                                (a.at_ms, (y0 + y1) / 2.0),
                                5,
                                color.filled(),
                            )))
                            .map_err(draw_err)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// A lane's label, one or two lines: a worker that talks to several services names the service
/// (`w1 → redis` over `connections`).
fn lane_label(lane: &Lane, several: &dyn Fn(&str) -> bool) -> Vec<String> {
    match lane {
        Lane::Service(s) => vec![s.clone()],
        Lane::Connections(_, w, s) if several(w) => {
            vec![format!("{w} → {s}"), "connections".into()]
        }
        Lane::Connections(_, w, _) => vec![format!("{w} connections")],
        Lane::Schedule(w, s) if several(w) => {
            vec![format!("{w} → {s}"), "attempts vs plan".into()]
        }
        Lane::Schedule(w, _) => vec![format!("{w} attempts vs plan")],
    }
}

/// Every mark the lanes draw, in the key's order.
const LEGEND: [(Mark, &str); 10] = [
    (Mark::Swatch(UP_LIGHT), "service up"),
    (Mark::Swatch(DOWN), "process down"),
    (Mark::Swatch(PROXY_DOWN), "proxies down"),
    (Mark::Swatch(WORKING), "working connection"),
    (Mark::Cross, "failed attempt"),
    (Mark::Wait, "wait before an attempt"),
    (Mark::Swatch(WINDOW), "expected window"),
    (Mark::Triangle(UP), "attempt in window"),
    (Mark::Triangle(DOWN), "attempt outside"),
    (Mark::Triangle(INK), "attempt not timed"),
];

#[derive(Clone, Copy)]
enum Mark {
    Swatch(RGBColor),
    Cross,
    Wait,
    Triangle(RGBColor),
}

/// The key under the lanes, on two rows: what each colour and mark means.
fn legend(area: &DrawingArea<SVGBackend<'_>, Shift>, x_start: i32) -> Result<(), DrawError> {
    let (_, y1) = area.get_pixel_range();
    let font = ("sans-serif", 12).into_font().color(&INK);
    let swatch = |c: RGBColor| Rectangle::new([(0, -5), (12, 5)], c.filled());
    let per_row = LEGEND.len().div_ceil(2);
    for (row, marks) in LEGEND.chunks(per_row).enumerate() {
        let y = y1.end - 26 + 16 * row as i32;
        let mut x = x_start;
        for (mark, text) in marks {
            let at = EmptyElement::at((x, y));
            let drawn = match *mark {
                Mark::Swatch(c) => area.draw(&(at + swatch(c))),
                Mark::Cross => area.draw(&(at + Cross::new((6, 0), 5, DOWN))),
                Mark::Wait => area.draw(&(at + PathElement::new(vec![(0, 0), (12, 0)], WINDOW))),
                Mark::Triangle(c) => area.draw(&(at + TriangleMarker::new((6, 0), 5, c.filled()))),
            };
            drawn.map_err(draw_err)?;
            area.draw(&Text::new(*text, (x + 17, y - 7), font.clone()))
                .map_err(draw_err)?;
            x += 30 + (text.len() as i32) * 7;
        }
    }
    Ok(())
}

fn draw_rate(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    report: &Report,
    end_ms: f64,
) -> Result<(), DrawError> {
    let buckets = &report.throughput.buckets;
    let top = buckets
        .iter()
        .map(|b| b.per_s)
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .margin_right(20)
        .x_label_area_size(28)
        .y_label_area_size(LABEL_PX)
        .build_cartesian_2d(0f64..end_ms, 0f64..top)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .y_desc("processed msgs/s")
        .x_desc("ms since the start of the run")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(draw_err)?;
    let workers: Vec<&String> = buckets
        .first()
        .map(|b| b.by_worker.keys().collect())
        .unwrap_or_default();
    let half = report.throughput.bucket_ms / 2.0;
    for (i, w) in workers.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                buckets.iter().map(|b| {
                    (
                        b.start_ms + half,
                        b.by_worker.get(*w).copied().unwrap_or(0.0),
                    )
                }),
                color.stroke_width(2),
            ))
            .map_err(draw_err)?
            .label(w.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(WINDOW)
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(draw_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_with_several_services_has_lanes_named_after_each() {
        let several = |w: &str| w == "w1";
        let conns = Lane::Connections("p".into(), "w1".into(), "redis".into());
        assert_eq!(lane_label(&conns, &several), ["w1 → redis", "connections"]);
        let plan = Lane::Schedule("w1".into(), "rabbitmq".into());
        assert_eq!(
            lane_label(&plan, &several),
            ["w1 → rabbitmq", "attempts vs plan"]
        );
        let alone = Lane::Connections("p".into(), "w2".into(), "redis".into());
        assert_eq!(lane_label(&alone, &several), ["w2 connections"]);
    }

    #[test]
    fn the_key_names_every_mark_the_lanes_draw() {
        // Colours and marks drawn in `draw_lanes`: each must have its entry in the key.
        let drawn = [
            "service up",
            "process down",
            "proxies down",
            "working connection",
            "failed attempt",
            "wait before an attempt",
            "expected window",
            "attempt in window",
            "attempt outside",
            "attempt not timed",
        ];
        let keyed: Vec<&str> = LEGEND.iter().map(|(_, t)| *t).collect();
        assert_eq!(keyed, drawn);
    }
}
