//! Values a record may carry but a table cannot hold or a path cannot
//! carry: each check finds the first such row of a decoded batch and says
//! why, so that its record is quarantined instead of failing a job later
//! (a cast to `int`, a file name too long for the file system).

use std::ops::RangeInclusive;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};

use crate::load::hive;

/// The first row whose integer `field` lies outside `range`.
pub fn first_int_out_of_range(
    batch: &RecordBatch,
    field: &str,
    range: RangeInclusive<i64>,
    what: &str,
) -> Option<(usize, String)> {
    let column = batch.column_by_name(field)?;
    let values = column.as_primitive_opt::<Int64Type>()?;
    values.iter().enumerate().find_map(|(row, value)| {
        let value = value?;
        (!range.contains(&value))
            .then(|| (row, format!("{field} {value} is out of range for {what}")))
    })
}

/// The first row where one of the number `fields` is infinite or NaN
/// (`1e999` in JSON): Parquet would store it, but no aggregate or join on
/// it means anything.
pub fn first_non_finite(batch: &RecordBatch, fields: &[&str]) -> Option<(usize, String)> {
    fields.iter().find_map(|field| {
        let column = batch.column_by_name(field)?;
        let values = column.as_primitive_opt::<Float64Type>()?;
        values.iter().enumerate().find_map(|(row, value)| {
            let value = value?;
            (!value.is_finite()).then(|| (row, format!("{field} {value} is not a finite number")))
        })
    })
}

/// The first row whose string key `field` holds a control character, or,
/// for a partition column (`max_escaped` given), a value longer than a
/// directory name can carry once Hive-escaped.
pub fn first_unusable_key(
    batch: &RecordBatch,
    field: &str,
    max_escaped: Option<usize>,
) -> Option<(usize, String)> {
    let column = batch.column_by_name(field)?;
    if column.data_type() != &DataType::Utf8 {
        return None;
    }
    column
        .as_string::<i32>()
        .iter()
        .enumerate()
        .find_map(|(row, value)| {
            let value = value?;
            if value.chars().any(char::is_control) {
                return Some((row, format!("{field} {value:?} holds a control character")));
            }
            let escaped = max_escaped.map(|_| hive::escaped_len(value));
            match (escaped, max_escaped) {
                (Some(len), Some(max)) if len > max => Some((
                    row,
                    format!(
                        "{field} is {len} bytes as a partition directory name, more than {max}"
                    ),
                )),
                _ => None,
            }
        })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Float64Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch(field: &str, column: Arc<dyn Array>) -> RecordBatch {
        let schema = Schema::new(vec![Field::new(field, column.data_type().clone(), true)]);
        RecordBatch::try_new(Arc::new(schema), vec![column]).unwrap()
    }

    #[test]
    fn each_check_names_the_first_bad_row_and_why() {
        let years = batch(
            "year",
            Arc::new(Int64Array::from(vec![
                Some(2018),
                None,
                Some(3_000_000_000),
            ])),
        );
        assert_eq!(
            first_int_out_of_range(&years, "year", i32::MIN as i64..=i32::MAX as i64, "an int"),
            Some((2, "year 3000000000 is out of range for an int".into()))
        );
        let lengths = batch(
            "length",
            Arc::new(Float64Array::from(vec![1.5, f64::INFINITY])),
        );
        assert_eq!(
            first_non_finite(&lengths, &["length"]),
            Some((1, "length inf is not a finite number".into()))
        );
        let long = "A".repeat(300);
        let ids = batch(
            "artist_id",
            Arc::new(StringArray::from(vec!["AR1", long.as_str()])),
        );
        assert_eq!(
            first_unusable_key(&ids, "artist_id", Some(200)),
            Some((
                1,
                "artist_id is 300 bytes as a partition directory name, more than 200".into()
            ))
        );
        // Escaping counts: 70 slashes are 210 bytes as %2F.
        let slashes = "/".repeat(70);
        let ids = batch(
            "artist_id",
            Arc::new(StringArray::from(vec![slashes.as_str()])),
        );
        assert!(first_unusable_key(&ids, "artist_id", Some(200)).is_some());
        let ids = batch("song_id", Arc::new(StringArray::from(vec!["SO\n1"])));
        assert_eq!(
            first_unusable_key(&ids, "song_id", None),
            Some((0, r#"song_id "SO\n1" holds a control character"#.into()))
        );
        let fine = batch(
            "song_id",
            Arc::new(StringArray::from(vec!["SO1", &"S".repeat(500)])),
        );
        assert_eq!(first_unusable_key(&fine, "song_id", None), None);
    }
}
