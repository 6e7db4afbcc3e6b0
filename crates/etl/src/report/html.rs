//! The run report as a page, `_report.html`: the report's tables, one bar
//! chart per [`Chart`], and per job the spread of its tasks' durations.
//!
//! The markup is in `templates/` (askama, which escapes every value for
//! HTML); this module computes the geometry: where each bar, tick and label
//! lies. The page must open from an archive or a bucket download with no
//! network, so everything is inline: CSS in the head, charts as SVG, no
//! scripts. It is also well-formed XML (XHTML-style), and every bar carries
//! its numbers as `data-` attributes, so tests and tools can read the page
//! back and check it against `_report.json`.

use std::fmt;

use askama::Template;

use super::{Bar, Chart, Grid, JobReport, RunReport, Spread, StageReport};

/// Height of every chart's plot area, in pixels.
const PLOT_HEIGHT: f64 = 240.0;
/// Room left of the plot for the value axis's tick labels and name.
const MARGIN_LEFT: f64 = 80.0;
/// Room above the plot for the chart's title.
const MARGIN_TOP: f64 = 40.0;
const MARGIN_RIGHT: f64 = 20.0;
/// Room below the labels for the name of the bars' axis.
const AXIS_NAME_ROOM: f64 = 28.0;
/// A chart with few bars is stretched to this width.
const MIN_PLOT_WIDTH: f64 = 480.0;
/// Narrowest slot per bar: charts with many bars grow wider (and scroll)
/// rather than squeeze their bars below this.
const MIN_BAR_SLOT: f64 = 18.0;
/// A task-duration slot holds three short lines of text under the plot.
const MIN_STAGE_SLOT: f64 = 84.0;
/// Estimated width of one character of the 11px chart font: SVG has no
/// text measurement without a script.
const CHAR_WIDTH: f64 = 6.5;
const LINE_HEIGHT: f64 = 14.0;

/// The whole page.
pub fn render(report: &RunReport) -> String {
    let page = Page {
        report,
        inputs: Table::new("inputs", report.inputs_grid()),
        rejects: report
            .inputs
            .iter()
            .filter_map(|i| Some((i.rejected, i.input, i.rejects_location.as_deref()?)))
            .collect(),
        tables: Table::new("tables", report.tables_grid()),
        charts: report.charts.iter().map(bar_chart).collect(),
        jobs: report
            .jobs
            .iter()
            .map(|job| JobSection {
                report: job,
                chart: task_chart(job),
                stages: Table::new("stages", job.stages_grid()),
            })
            .collect(),
    };
    xml_characters(&page.to_string())
}

/// XML cannot carry most control characters, not even escaped: any that
/// reached the page from the input (an artist's name, a path) is replaced,
/// so odd input never makes the page unreadable.
fn xml_characters(page: &str) -> String {
    page.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if c.is_control() => char::REPLACEMENT_CHARACTER,
            c => c,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    report: &'a RunReport,
    inputs: Table,
    /// Per input with rejected records: how many, which input, and where they went.
    rejects: Vec<(u64, &'static str, &'a str)>,
    tables: Table,
    charts: Vec<Svg>,
    jobs: Vec<JobSection<'a>>,
}

/// One job: its task-duration chart and its stages.
struct JobSection<'a> {
    report: &'a JobReport,
    chart: Svg,
    stages: Table,
}

#[derive(Template)]
#[template(path = "table.html")]
struct Table {
    class: &'static str,
    grid: Grid,
}

impl Table {
    fn new(class: &'static str, grid: Grid) -> Self {
        Self { class, grid }
    }
}

/// A position or length in a chart, written to a tenth of a pixel.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Px(f64);

impl fmt::Display for Px {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1}", self.0)
    }
}

/// One chart as `templates/chart.svg` draws it: its frame, its value axis,
/// and either bars or task-duration ranges.
#[derive(Template)]
#[template(path = "chart.svg", escape = "html")]
struct Svg {
    /// `data-chart` or `data-job`, with `name`: how readers of the page find the chart.
    key: &'static str,
    name: String,
    title: String,
    width: Px,
    height: Px,
    left: Px,
    right: Px,
    top: Px,
    baseline: Px,
    /// The vertical centre of the plot, where the value axis's name stands.
    middle: Px,
    tick_x: Px,
    ticks: Vec<Tick>,
    y_name: String,
    x_name: String,
    x_name_x: Px,
    x_name_y: Px,
    bars: Vec<BarMark>,
    ranges: Vec<RangeMark>,
}

/// A gridline and its label on the value axis.
struct Tick {
    y: Px,
    value: u64,
}

/// One bar and its label under the axis, upright when labels are wider
/// than their slot.
struct BarMark {
    left: Px,
    top: Px,
    width: Px,
    height: Px,
    centre: Px,
    label_y: Px,
    upright: bool,
    label: String,
    value: u64,
}

/// One stage: a bar from its fastest to its slowest task, a tick at the
/// median, and under the axis its id, task count and seconds.
struct RangeMark {
    left: Px,
    right: Px,
    top: Px,
    width: Px,
    height: Px,
    median: Px,
    centre: Px,
    stage: String,
    spread: Spread,
    lines: Vec<(Px, String)>,
}

/// A value axis with ticks at round numbers (1, 2 or 5 × 10ⁿ), about five
/// of them, so a bar's size reads at a glance.
#[derive(Debug, PartialEq)]
struct ValueAxis {
    top: u64,
    step: u64,
}

impl ValueAxis {
    fn covering(max: u64) -> Self {
        let max = max.max(1);
        let rough = max.div_ceil(5);
        let magnitude = 10u64.pow(rough.ilog10());
        let step = [1, 2, 5, 10]
            .into_iter()
            .map(|m| m * magnitude)
            .find(|step| *step >= rough)
            .unwrap_or(10 * magnitude);
        Self {
            top: max.div_ceil(step) * step,
            step,
        }
    }

    /// The vertical position of `value`.
    fn y(&self, value: u64) -> f64 {
        MARGIN_TOP + PLOT_HEIGHT * (1.0 - value as f64 / self.top as f64)
    }

    /// The gridlines with their labels, from 0 to the top.
    fn ticks(&self) -> Vec<Tick> {
        (0..=self.top / self.step)
            .map(|i| Tick {
                y: Px(self.y(i * self.step)),
                value: i * self.step,
            })
            .collect()
    }
}

/// A chart's geometry: the value axis on the left, one slot per bar, and
/// room under the plot for the bars' labels.
struct Canvas {
    axis: ValueAxis,
    slots: usize,
    slot: f64,
    label_room: f64,
}

/// Few slots share the minimum plot width; many get `min_slot` each, and
/// the chart grows wider than the page (its box scrolls).
fn slot_width(slots: usize, min_slot: f64) -> f64 {
    (MIN_PLOT_WIDTH / slots.max(1) as f64).max(min_slot)
}

/// What identifies a chart and names it and its axes.
struct Labels {
    key: &'static str,
    name: String,
    title: String,
    x_name: String,
    y_name: String,
}

impl Canvas {
    fn new(axis: ValueAxis, slots: usize, min_slot: f64, label_room: f64) -> Self {
        Self {
            axis,
            slots,
            slot: slot_width(slots, min_slot),
            label_room,
        }
    }

    fn plot_right(&self) -> f64 {
        MARGIN_LEFT + (self.slots as f64 * self.slot).max(MIN_PLOT_WIDTH)
    }

    fn baseline(&self) -> f64 {
        MARGIN_TOP + PLOT_HEIGHT
    }

    /// The horizontal centre of slot `i`.
    fn centre(&self, i: usize) -> f64 {
        MARGIN_LEFT + self.slot * (i as f64 + 0.5)
    }

    /// The chart around its bars or ranges: frame, axes and their names.
    fn svg(&self, labels: Labels, bars: Vec<BarMark>, ranges: Vec<RangeMark>) -> Svg {
        let width = self.plot_right() + MARGIN_RIGHT;
        let height = self.baseline() + self.label_room + AXIS_NAME_ROOM;
        Svg {
            key: labels.key,
            name: labels.name,
            title: labels.title,
            width: Px(width.round()),
            height: Px(height.round()),
            left: Px(MARGIN_LEFT),
            right: Px(self.plot_right()),
            top: Px(MARGIN_TOP),
            baseline: Px(self.baseline()),
            middle: Px(MARGIN_TOP + PLOT_HEIGHT / 2.0),
            tick_x: Px(MARGIN_LEFT - 6.0),
            ticks: self.axis.ticks(),
            y_name: labels.y_name,
            x_name: labels.x_name,
            x_name_x: Px((MARGIN_LEFT + self.plot_right()) / 2.0),
            x_name_y: Px(height - 8.0),
            bars,
            ranges,
        }
    }
}

/// One of the report's distributions: a bar per label, each labelled under
/// the axis, turned upright when labels are wider than their slot.
fn bar_chart(chart: &Chart) -> Svg {
    let axis = ValueAxis::covering(chart.bars.iter().map(|b| b.value).max().unwrap_or(0));
    let longest = chart
        .bars
        .iter()
        .map(|b| b.label.chars().count() as f64 * CHAR_WIDTH)
        .fold(0.0, f64::max);
    let upright = longest > slot_width(chart.bars.len(), MIN_BAR_SLOT) - 4.0;
    let label_room = if upright {
        longest + 12.0
    } else {
        LINE_HEIGHT + 8.0
    };
    let canvas = Canvas::new(axis, chart.bars.len(), MIN_BAR_SLOT, label_room);
    let bars = chart
        .bars
        .iter()
        .enumerate()
        .map(|(i, b)| bar(&canvas, i, b, upright))
        .collect();
    let labels = Labels {
        key: "data-chart",
        name: chart.title.clone(),
        title: chart.title.clone(),
        x_name: chart.x.clone(),
        y_name: chart.y.clone(),
    };
    canvas.svg(labels, bars, Vec::new())
}

/// Bar `i`, carrying its numbers, and where its label goes.
fn bar(canvas: &Canvas, i: usize, bar: &Bar, upright: bool) -> BarMark {
    let centre = canvas.centre(i);
    let width = canvas.slot * 0.75;
    // A small value beside a dominant one stays visible, and hoverable.
    let least = if bar.value > 0 { 1.0 } else { 0.0 };
    let height = (canvas.baseline() - canvas.axis.y(bar.value)).max(least);
    let label_y = canvas.baseline() + if upright { 6.0 } else { 12.0 };
    BarMark {
        left: Px(centre - width / 2.0),
        top: Px(canvas.baseline() - height),
        width: Px(width),
        height: Px(height),
        centre: Px(centre),
        label_y: Px(label_y),
        upright,
        label: bar.label.clone(),
        value: bar.value,
    }
}

/// Per stage of `job`, the range of its tasks' durations (min to max) with
/// a tick at the median: a long range or a median far from the top shows
/// straggling tasks, the cost of skew.
fn task_chart(job: &JobReport) -> Svg {
    let spreads: Vec<Spread> = job
        .stages
        .iter()
        .map(|s| Spread::of(s.task_ms.clone()))
        .collect();
    let axis = ValueAxis::covering(spreads.iter().map(|s| s.max).max().unwrap_or(0));
    let canvas = Canvas::new(axis, spreads.len(), MIN_STAGE_SLOT, 3.0 * LINE_HEIGHT + 6.0);
    let ranges = job
        .stages
        .iter()
        .zip(spreads)
        .enumerate()
        .map(|(i, (stage, spread))| stage_range(&canvas, i, stage, spread))
        .collect();
    let labels = Labels {
        key: "data-job",
        name: job.job.clone(),
        title: format!("{}: task durations per stage", job.job),
        x_name: "stage".into(),
        y_name: "task ms (min · median · max)".into(),
    };
    canvas.svg(labels, Vec::new(), ranges)
}

/// Stage `i`'s range of task times and the three lines under it.
fn stage_range(canvas: &Canvas, i: usize, stage: &StageReport, spread: Spread) -> RangeMark {
    let centre = canvas.centre(i);
    let width = canvas.slot * 0.5;
    let (top, bottom) = (canvas.axis.y(spread.max), canvas.axis.y(spread.min));
    let lines = [
        format!("stage {}", stage.stage),
        format!("{} tasks", stage.tasks),
        format!("{:.2} s", stage.seconds),
    ];
    RangeMark {
        left: Px(centre - width / 2.0),
        right: Px(centre + width / 2.0),
        top: Px(top),
        width: Px(width),
        height: Px((bottom - top).max(1.0)),
        median: Px(canvas.axis.y(spread.median)),
        centre: Px(centre),
        stage: stage.stage.clone(),
        spread,
        lines: lines
            .into_iter()
            .enumerate()
            .map(|(line, text)| {
                (
                    Px(canvas.baseline() + LINE_HEIGHT * (line as f64 + 1.0)),
                    text,
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(bars: &[(&str, u64)]) -> Chart {
        Chart {
            title: "songs rows by year".into(),
            x: "year".into(),
            y: "rows".into(),
            bars: bars
                .iter()
                .map(|(label, value)| Bar {
                    label: label.to_string(),
                    value: *value,
                })
                .collect(),
        }
    }

    fn report() -> RunReport {
        RunReport {
            schema_version: crate::report::SCHEMA_VERSION,
            versions: Default::default(),
            run_id: "run-1".into(),
            input: "file:///in/a&b <x>".into(),
            output: "file:///out".into(),
            mode: "full",
            published: "file:///out/run-1".into(),
            seconds: 1.5,
            inputs: vec![],
            tables: vec![],
            jobs: vec![JobReport {
                job: "write songs".into(),
                job_id: "j1".into(),
                seconds: 1.0,
                planning_seconds: 0.1,
                submission_seconds: 0.05,
                stages: vec![StageReport {
                    stage: "2".into(),
                    tasks: 3,
                    seconds: 0.9,
                    input_rows: 10,
                    output_rows: 10,
                    shuffle_blocks: 3,
                    shuffle_bytes: 2048,
                    task_ms: vec![300, 10, 40],
                }],
            }],
            charts: vec![chart(&[("0", 40), ("1969", 2), ("AR\"&<'>", 1)])],
        }
    }

    #[test]
    fn markup_and_control_characters_in_the_input_keep_the_page_well_formed() {
        let mut report = report();
        report.run_id = "run <1> & 'x' \"y\"\u{1}".into();
        let page = render(&report);
        let xml = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        };
        let doc = roxmltree::Document::parse_with_options(&page, xml).unwrap();
        let heading = doc.descendants().find(|n| n.has_tag_name("h1")).unwrap();
        assert_eq!(
            heading.text(),
            Some("Sparkify Lake run run <1> & 'x' \"y\"\u{FFFD}")
        );
    }

    #[test]
    fn a_chart_has_one_rect_per_bar_with_its_numbers() {
        let bars: Vec<(String, u64)> = (0..70).map(|i| ((1950 + i).to_string(), i)).collect();
        let refs: Vec<(&str, u64)> = bars.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        let svg = bar_chart(&chart(&refs)).to_string();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let rects: Vec<(&str, u64)> = doc
            .descendants()
            .filter(|n| n.has_tag_name("rect"))
            .map(|n| {
                let value = n.attribute("data-value").unwrap().parse().unwrap();
                (n.attribute("data-label").unwrap(), value)
            })
            .collect();
        assert_eq!(rects, refs);
    }

    #[test]
    fn the_page_is_well_formed_and_keeps_the_numbers() {
        let page = render(&report());
        let xml = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        };
        let doc = roxmltree::Document::parse_with_options(&page, xml).unwrap();
        let chart = doc
            .descendants()
            .find(|n| n.attribute("data-chart") == Some("songs rows by year"))
            .unwrap();
        let labels: Vec<_> = chart
            .descendants()
            .filter_map(|n| n.attribute("data-label"))
            .collect();
        assert_eq!(labels, ["0", "1969", "AR\"&<'>"]);
        let stage = doc
            .descendants()
            .find(|n| n.attribute("data-stage") == Some("2"))
            .unwrap();
        let spread =
            ["data-min-ms", "data-median-ms", "data-max-ms"].map(|a| stage.attribute(a).unwrap());
        assert_eq!(spread, ["10", "40", "300"]);
        for external in ["<script", "src=", "href=", "@import", "url("] {
            assert!(
                !page.contains(external),
                "the page loads nothing: {external}"
            );
        }
    }

    #[test]
    fn value_axis_ticks_are_round_and_cover_the_largest_bar() {
        assert_eq!(ValueAxis::covering(0), ValueAxis { top: 1, step: 1 });
        assert_eq!(ValueAxis::covering(43), ValueAxis { top: 50, step: 10 });
        assert_eq!(
            ValueAxis::covering(7004),
            ValueAxis {
                top: 8000,
                step: 2000
            }
        );
    }
}
