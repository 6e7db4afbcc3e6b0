//! The distributions a run's report charts: how rows spread over the output
//! partitions of each partitioned table, how plays spread over users, how
//! long each stage's tasks took. Each is computed once, here, and both
//! `_report.json` and `_report.html` show the same numbers.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::load::writer::WrittenFile;

/// One chart: labelled bars, in the order they are drawn.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Chart {
    pub title: String,
    /// What the bars are (`year`, `songs per artist` …).
    pub x: String,
    /// What a bar's height counts (`rows`, `users` …).
    pub y: String,
    pub bars: Vec<Bar>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bar {
    pub label: String,
    pub value: u64,
}

impl Chart {
    fn new(title: impl Into<String>, x: &str, y: &str, bars: Vec<Bar>) -> Self {
        Self {
            title: title.into(),
            x: x.to_string(),
            y: y.to_string(),
            bars,
        }
    }
}

/// The value of hive column `column` in a partition path such as
/// `year=2018/month=11`.
fn partition_value<'a>(partition: &'a str, column: &str) -> Option<&'a str> {
    partition
        .split('/')
        .filter_map(|part| part.split_once('='))
        .find(|(name, _)| *name == column)
        .map(|(_, value)| value)
}

/// Rows of `files` summed by the values of `columns` in their partitions,
/// ordered by those values (numbers numerically).
fn rows_by(files: &[WrittenFile], columns: &[&str]) -> BTreeMap<Vec<SortKey>, u64> {
    let mut rows = BTreeMap::new();
    for file in files {
        let key = columns
            .iter()
            .map(|c| SortKey::of(partition_value(&file.partition, c).unwrap_or("")))
            .collect();
        *rows.entry(key).or_default() += file.rows;
    }
    rows
}

/// A partition value that sorts numbers as numbers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SortKey {
    Number(i64),
    Text(String),
}

impl SortKey {
    fn of(value: &str) -> Self {
        value
            .parse()
            .map_or_else(|_| SortKey::Text(value.to_string()), SortKey::Number)
    }

    fn label(&self) -> String {
        match self {
            SortKey::Number(n) => n.to_string(),
            SortKey::Text(t) => t.clone(),
        }
    }
}

/// Rows per value of `columns` (`2018-11` for year and month), as a chart.
pub fn rows_per_partition(table: &str, files: &[WrittenFile], columns: &[&str]) -> Chart {
    let bars = rows_by(files, columns)
        .into_iter()
        .map(|(key, rows)| Bar {
            label: key.iter().map(SortKey::label).collect::<Vec<_>>().join("-"),
            value: rows,
        })
        .collect();
    Chart::new(
        format!("{table} rows by {}", columns.join(" and ")),
        &columns.join("-"),
        "rows",
        bars,
    )
}

/// How many keys have how many rows, in power-of-two buckets (1, 2, 3–4,
/// 5–8 …): the shape of a skewed distribution over many keys, where one bar
/// per key would be unreadable. `counts` are (rows, keys with that many
/// rows) pairs, so a distribution already counted on the executors arrives
/// as a few pairs, not one number per key.
pub fn keys_per_count(
    title: &str,
    key: &str,
    counts: impl IntoIterator<Item = (u64, u64)>,
) -> Chart {
    let mut buckets: BTreeMap<u32, u64> = BTreeMap::new();
    for (count, keys) in counts.into_iter().filter(|(c, _)| *c > 0) {
        *buckets
            .entry(count.next_power_of_two().trailing_zeros())
            .or_default() += keys;
    }
    let bars = buckets
        .into_iter()
        .map(|(bucket, keys)| {
            let high = 1u64 << bucket;
            let low = high / 2 + 1;
            let label = if low >= high {
                high.to_string()
            } else {
                format!("{low}–{high}")
            };
            Bar { label, value: keys }
        })
        .collect();
    Chart::new(title, &format!("rows per {key}"), &format!("{key}s"), bars)
}

/// Rows per distinct value of `column` across all partitions.
pub fn rows_per_value(files: &[WrittenFile], column: &str) -> Vec<u64> {
    rows_by(files, &[column]).into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(partition: &str, rows: u64) -> WrittenFile {
        WrittenFile::example("songs", partition, rows, 1)
    }

    fn bars(chart: &Chart) -> Vec<(&str, u64)> {
        chart
            .bars
            .iter()
            .map(|b| (b.label.as_str(), b.value))
            .collect()
    }

    #[test]
    fn rows_add_up_per_partition_value_in_numeric_order() {
        let files = [
            file("year=2018/month=11", 5),
            file("year=2018/month=9", 2),
            file("year=2018/month=11", 1),
        ];
        let chart = rows_per_partition("time", &files, &["year", "month"]);
        assert_eq!(bars(&chart), vec![("2018-9", 2), ("2018-11", 6)]);
    }

    #[test]
    fn keys_fall_into_power_of_two_buckets() {
        let counts = [1, 1, 2, 3, 4, 5, 9].map(|rows| (rows, 1));
        let chart = keys_per_count("songs per artist", "artist", counts);
        assert_eq!(
            bars(&chart),
            vec![("1", 2), ("2", 1), ("3–4", 2), ("5–8", 1), ("9–16", 1)]
        );
    }

    #[test]
    fn rows_per_value_sums_a_column_over_other_partitions() {
        let files = [
            file("year=0/artist_id=AR1", 3),
            file("year=1999/artist_id=AR1", 1),
            file("year=0/artist_id=AR2", 2),
        ];
        assert_eq!(rows_per_value(&files, "artist_id"), vec![4, 2]);
    }
}
