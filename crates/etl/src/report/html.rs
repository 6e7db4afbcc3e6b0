//! The run report as a page, `_report.html`: the report's tables, one bar
//! chart per [`Chart`], and per job the spread of its tasks' durations.
//!
//! The page must open from an archive or a bucket download with no network,
//! so everything is inline: CSS in the head, charts as SVG drawn here, no
//! scripts. It is also well-formed XML (XHTML-style), and every bar carries
//! its numbers as `data-` attributes, so tests and tools can read the page
//! back and check it against `_report.json`.

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

const STYLE: &str = "
body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }
h1 { font-size: 1.4rem; }
h2 { font-size: 1.2rem; margin-top: 2.5rem; border-bottom: 1px solid #ccc; }
h3 { font-size: 1rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { padding: 0.2rem 0.8rem; border-bottom: 1px solid #e3e3e3; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2rem 1rem; }
dt { font-weight: bold; }
dd { margin: 0; font-family: monospace; }
.chart { overflow-x: auto; margin: 0.5rem 0 1.5rem; }
svg { background: #fff; }
svg text { font: 11px sans-serif; fill: #333; }
svg text.title { font-size: 14px; font-weight: bold; }
svg text.axis-name { font-size: 12px; font-style: italic; }
.grid { stroke: #e6e6e6; }
.axis { stroke: #555; }
.bar { fill: #4e79a7; }
.bar:hover { fill: #f28e2b; }
.range { fill: #a0cbe8; stroke: #4e79a7; }
.range:hover { fill: #f28e2b; }
.median { stroke: #e15759; stroke-width: 3; }
";

/// The whole page.
pub fn render(report: &RunReport) -> String {
    let charts: String = report.charts.iter().map(bar_chart).collect();
    let jobs: String = report.jobs.iter().map(job_section).collect();
    let body = format!(
        "{}<h2>Inputs</h2>{}<h2>Tables</h2>{}<h2>Distributions</h2>{charts}<h2>Jobs</h2>{jobs}",
        header(report),
        inputs_table(report),
        tables_table(report),
    );
    format!(
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\
         <head><meta charset=\"utf-8\"/><title>{title}</title><style>{STYLE}</style></head>\
         <body>{body}</body></html>\n",
        title = escape(&format!("Sparkify Lake run {}", report.run_id)),
    )
}

/// Text from the report (artist ids, paths, titles) made safe for both
/// HTML and XML. Control characters XML cannot carry, even escaped, are
/// replaced, so odd input never makes the page unreadable.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            '\t' | '\n' | '\r' => escaped.push(c),
            c if c.is_control() => escaped.push(char::REPLACEMENT_CHARACTER),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Which run this is, where it read and wrote, and how long it took.
fn header(report: &RunReport) -> String {
    let facts = [
        ("run", report.run_id.clone()),
        ("input", report.input.clone()),
        ("output", report.output.clone()),
        ("published", report.published.clone()),
        ("seconds", format!("{:.2}", report.seconds)),
    ];
    let items: String = facts
        .iter()
        .map(|(name, value)| format!("<dt>{name}</dt><dd>{}</dd>", escape(value)))
        .collect();
    format!(
        "<h1>Sparkify Lake run {}</h1><dl>{items}</dl>",
        escape(&report.run_id)
    )
}

/// An HTML table of text cells; its `class` (`inputs`, `tables`, `stages`)
/// lets readers of the page find it.
fn table(class: &str, grid: Grid) -> String {
    let head: String = grid
        .header
        .iter()
        .map(|h| format!("<th>{}</th>", escape(h)))
        .collect();
    let body: String = grid
        .rows
        .into_iter()
        .map(|row| {
            let cells: String = row
                .iter()
                .map(|cell| format!("<td>{}</td>", escape(cell)))
                .collect();
            format!("<tr>{cells}</tr>")
        })
        .collect();
    format!("<table class=\"{class}\"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
}

/// Records read per kind of input, and where the rejected ones went.
fn inputs_table(report: &RunReport) -> String {
    let rejects: String = report
        .inputs
        .iter()
        .filter_map(|i| Some((i, i.rejects_location.as_ref()?)))
        .map(|(i, location)| {
            format!(
                "<p>{} rejected {} records: <code>{}</code></p>",
                i.rejected,
                i.input,
                escape(location)
            )
        })
        .collect();
    table("inputs", report.inputs_grid()) + &rejects
}

/// Each output table's size and how evenly its rows fill its partitions.
fn tables_table(report: &RunReport) -> String {
    table("tables", report.tables_grid())
}

/// One job: its task-duration chart and its stages.
fn job_section(job: &JobReport) -> String {
    let id = if job.job_id.is_empty() {
        String::new()
    } else {
        format!(" (<code>{}</code>)", escape(&job.job_id))
    };
    format!(
        "<h3>{}{id}, {:.2} s</h3>{}{}",
        escape(&job.job),
        job.seconds,
        task_chart(job),
        table("stages", job.stages_grid()),
    )
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

    /// Gridlines, tick labels, the axis line and its name.
    fn draw(&self, plot_right: f64, name: &str) -> String {
        let ticks: String = (0..=self.top / self.step)
            .map(|i| {
                let (value, y) = (i * self.step, self.y(i * self.step));
                format!(
                    "<line class=\"grid\" x1=\"{MARGIN_LEFT}\" x2=\"{plot_right:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
                     <text x=\"{:.1}\" y=\"{y:.1}\" text-anchor=\"end\" dominant-baseline=\"middle\">{value}</text>",
                    MARGIN_LEFT - 6.0
                )
            })
            .collect();
        let middle = MARGIN_TOP + PLOT_HEIGHT / 2.0;
        format!(
            "{ticks}<line class=\"axis\" x1=\"{MARGIN_LEFT}\" x2=\"{MARGIN_LEFT}\" y1=\"{MARGIN_TOP}\" y2=\"{:.1}\"/>\
             <text class=\"axis-name\" x=\"16\" y=\"{middle:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {middle:.1})\">{}</text>",
            MARGIN_TOP + PLOT_HEIGHT,
            escape(name)
        )
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

    /// The `<svg>` element around `content`, with `attributes` (already
    /// escaped) identifying the chart, its title, both axes and their names.
    fn svg(
        &self,
        attributes: &str,
        title: &str,
        x_name: &str,
        y_name: &str,
        content: &str,
    ) -> String {
        let width = self.plot_right() + MARGIN_RIGHT;
        let height = self.baseline() + self.label_room + AXIS_NAME_ROOM;
        let x_name_centre = (MARGIN_LEFT + self.plot_right()) / 2.0;
        let baseline = self.baseline();
        format!(
            "<div class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" {attributes} role=\"img\" \
             width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\">\
             <title>{title}</title>\
             <text class=\"title\" x=\"{MARGIN_LEFT}\" y=\"20\">{title}</text>\
             {axis}{content}\
             <line class=\"axis\" x1=\"{MARGIN_LEFT}\" x2=\"{right:.1}\" y1=\"{baseline:.1}\" y2=\"{baseline:.1}\"/>\
             <text class=\"axis-name\" x=\"{x_name_centre:.1}\" y=\"{name_y:.1}\" text-anchor=\"middle\">{x_name}</text>\
             </svg></div>",
            title = escape(title),
            axis = self.axis.draw(self.plot_right(), y_name),
            right = self.plot_right(),
            name_y = height - 8.0,
            x_name = escape(x_name),
        )
    }
}

/// One of the report's distributions: a bar per label, each labelled under
/// the axis, turned upright when labels are wider than their slot.
fn bar_chart(chart: &Chart) -> String {
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
    let bars: String = chart
        .bars
        .iter()
        .enumerate()
        .map(|(i, b)| bar(&canvas, i, b, upright))
        .collect();
    canvas.svg(
        &format!("data-chart=\"{}\"", escape(&chart.title)),
        &chart.title,
        &chart.x,
        &chart.y,
        &bars,
    )
}

/// Bar `i`: its rect, carrying its numbers and a tooltip, and its label
/// under the axis, upright when labels are wider than a slot.
fn bar(canvas: &Canvas, i: usize, bar: &Bar, upright: bool) -> String {
    let x = canvas.centre(i);
    let width = canvas.slot * 0.75;
    // A small value beside a dominant one stays visible, and hoverable.
    let least = if bar.value > 0 { 1.0 } else { 0.0 };
    let height = (canvas.baseline() - canvas.axis.y(bar.value)).max(least);
    let (label_y, placement) = if upright {
        let y = canvas.baseline() + 6.0;
        let turn = format!(
            "text-anchor=\"end\" dominant-baseline=\"middle\" transform=\"rotate(-90 {x:.1} {y:.1})\""
        );
        (y, turn)
    } else {
        (
            canvas.baseline() + 12.0,
            "text-anchor=\"middle\"".to_string(),
        )
    };
    let (label, value) = (escape(&bar.label), bar.value);
    format!(
        "<rect class=\"bar\" x=\"{:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{height:.1}\" \
         data-label=\"{label}\" data-value=\"{value}\"><title>{label}: {value}</title></rect>\
         <text x=\"{x:.1}\" y=\"{label_y:.1}\" {placement}>{label}</text>",
        x - width / 2.0,
        canvas.baseline() - height,
    )
}

/// Per stage of `job`, the range of its tasks' durations (min to max) with
/// a tick at the median: a long range or a median far from the top shows
/// straggling tasks, the cost of skew.
fn task_chart(job: &JobReport) -> String {
    let spreads: Vec<Spread> = job
        .stages
        .iter()
        .map(|s| Spread::of(s.task_ms.clone()))
        .collect();
    let axis = ValueAxis::covering(spreads.iter().map(|s| s.max).max().unwrap_or(0));
    let canvas = Canvas::new(axis, spreads.len(), MIN_STAGE_SLOT, 3.0 * LINE_HEIGHT + 6.0);
    let ranges: String = job
        .stages
        .iter()
        .zip(&spreads)
        .enumerate()
        .map(|(i, (stage, spread))| stage_range(&canvas, i, stage, spread))
        .collect();
    canvas.svg(
        &format!("data-job=\"{}\"", escape(&job.job)),
        &format!("{}: task durations per stage", job.job),
        "stage",
        "task ms (min · median · max)",
        &ranges,
    )
}

/// Stage `i`: a bar from its fastest to its slowest task, carrying the
/// numbers and a tooltip, a tick at the median, and under the axis its id,
/// task count and seconds.
fn stage_range(canvas: &Canvas, i: usize, stage: &StageReport, spread: &Spread) -> String {
    let x = canvas.centre(i);
    let width = canvas.slot * 0.5;
    let (top, bottom) = (canvas.axis.y(spread.max), canvas.axis.y(spread.min));
    let median = canvas.axis.y(spread.median);
    let id = escape(&stage.stage);
    let lines = [
        format!("stage {id}"),
        format!("{} tasks", stage.tasks),
        format!("{:.2} s", stage.seconds),
    ];
    let labels: String = lines
        .iter()
        .enumerate()
        .map(|(line, text)| {
            format!(
                "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{text}</text>",
                canvas.baseline() + LINE_HEIGHT * (line as f64 + 1.0)
            )
        })
        .collect();
    let Spread {
        min,
        median: median_ms,
        max,
    } = *spread;
    format!(
        "<rect class=\"range\" x=\"{left:.1}\" y=\"{top:.1}\" width=\"{width:.1}\" height=\"{:.1}\" \
         data-stage=\"{id}\" data-min-ms=\"{min}\" data-median-ms=\"{median_ms}\" data-max-ms=\"{max}\">\
         <title>stage {id}: {min} · {median_ms} · {max} ms (min · median · max)</title></rect>\
         <line class=\"median\" x1=\"{left:.1}\" x2=\"{:.1}\" y1=\"{median:.1}\" y2=\"{median:.1}\"/>{labels}",
        (bottom - top).max(1.0),
        x + width / 2.0,
        left = x - width / 2.0,
    )
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
            published: "file:///out/run-1".into(),
            seconds: 1.5,
            inputs: vec![],
            tables: vec![],
            jobs: vec![JobReport {
                job: "write songs".into(),
                job_id: "j1".into(),
                seconds: 1.0,
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
    fn escaping_covers_markup_quotes_and_control_characters() {
        assert_eq!(
            escape("a&b <c> \"d\" 'e'\u{1}"),
            "a&amp;b &lt;c&gt; &quot;d&quot; &#39;e&#39;\u{FFFD}"
        );
    }

    #[test]
    fn a_chart_has_one_rect_per_bar_with_its_numbers() {
        let bars: Vec<(String, u64)> = (0..70).map(|i| ((1950 + i).to_string(), i)).collect();
        let refs: Vec<(&str, u64)> = bars.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        let svg = bar_chart(&chart(&refs));
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
