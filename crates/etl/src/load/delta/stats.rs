//! A Parquet file's statistics in Delta's form (`numRecords`, `minValues`,
//! `maxValues`, `nullCount`), taken from the footer the writer just
//! encoded, so that readers skip files without opening them.
//!
//! Worked out on the executor that wrote the file: the footer is in hand
//! there, and the client receives one short JSON text per file.

use std::cmp::Ordering;

use datafusion::arrow::datatypes::{Schema, TimeUnit};
use datafusion::common::{Result, ScalarValue};
use datafusion::parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use datafusion::parquet::file::metadata::ParquetMetaData;
use serde_json::{Map, Value, json};

/// Strings longer than this get no min or max: Delta readers compare the
/// value as a whole, and a key this long would only bloat the log.
const MAX_STAT_STRING: usize = 64;

/// The statistics of one file whose data columns are `schema`, as the JSON
/// text of an Add action's `stats`.
pub fn file_stats(schema: &Schema, metadata: &ParquetMetaData) -> Result<String> {
    let (mut mins, mut maxes, mut nulls) = (Map::new(), Map::new(), Map::new());
    let row_groups = metadata.row_groups();
    let parquet_schema = metadata.file_metadata().schema_descr();
    for field in schema.fields() {
        let converter = StatisticsConverter::try_new(field.name(), schema, parquet_schema)?;
        let null_count: u64 = converter
            .row_group_null_counts(row_groups.iter())?
            .iter()
            .flatten()
            .sum();
        nulls.insert(field.name().clone(), json!(null_count));
        let lows = converter.row_group_mins(row_groups.iter())?;
        let highs = converter.row_group_maxes(row_groups.iter())?;
        let (low, high) = (
            extreme(&lows, Ordering::Less)?,
            extreme(&highs, Ordering::Greater)?,
        );
        if let (Some(low), Some(high)) = (low.and_then(stat_value), high.and_then(stat_value)) {
            mins.insert(field.name().clone(), low);
            maxes.insert(field.name().clone(), high);
        }
    }
    let stats = json!({
        "numRecords": metadata.file_metadata().num_rows(),
        "minValues": mins,
        "maxValues": maxes,
        "nullCount": nulls,
    });
    Ok(stats.to_string())
}

/// The smallest (`Less`) or largest (`Greater`) non-null value of
/// `values`, one per row group. `None` when a row group has no statistic:
/// a bound over part of the file would let a reader skip rows it needs.
fn extreme(
    values: &dyn datafusion::arrow::array::Array,
    wanted: Ordering,
) -> Result<Option<ScalarValue>> {
    let mut best: Option<ScalarValue> = None;
    for i in 0..values.len() {
        if values.is_null(i) {
            return Ok(None);
        }
        let value = ScalarValue::try_from_array(values, i)?;
        best = match best {
            Some(current) if value.partial_cmp(&current) != Some(wanted) => Some(current),
            _ => Some(value),
        };
    }
    Ok(best)
}

/// A statistic as Delta writes it in JSON, or `None` where a value has no
/// safe form (NaN and infinities, long strings, types we do not write).
fn stat_value(value: ScalarValue) -> Option<Value> {
    match value {
        ScalarValue::Int8(Some(v)) => Some(json!(v)),
        ScalarValue::Int16(Some(v)) => Some(json!(v)),
        ScalarValue::Int32(Some(v)) => Some(json!(v)),
        ScalarValue::Int64(Some(v)) => Some(json!(v)),
        ScalarValue::Float32(Some(v)) if v.is_finite() => Some(json!(v)),
        ScalarValue::Float64(Some(v)) if v.is_finite() => Some(json!(v)),
        ScalarValue::Boolean(Some(v)) => Some(json!(v)),
        ScalarValue::Utf8(Some(v))
        | ScalarValue::LargeUtf8(Some(v))
        | ScalarValue::Utf8View(Some(v))
            if v.chars().count() <= MAX_STAT_STRING =>
        {
            Some(json!(v))
        }
        ScalarValue::TimestampMillisecond(Some(v), _) => timestamp(v, TimeUnit::Millisecond),
        ScalarValue::TimestampMicrosecond(Some(v), _) => timestamp(v, TimeUnit::Microsecond),
        ScalarValue::Date32(Some(days)) => {
            chrono::DateTime::from_timestamp(i64::from(days) * 86_400, 0)
                .map(|d| json!(d.format("%Y-%m-%d").to_string()))
        }
        _ => None,
    }
}

/// A timestamp statistic in Delta's text form, to the millisecond
/// (`2018-11-21T21:56:47.796Z`). A value with finer digits is left out
/// rather than rounded: a rounded bound could exclude the value itself.
fn timestamp(value: i64, unit: TimeUnit) -> Option<Value> {
    let millis = match unit {
        TimeUnit::Millisecond => value,
        TimeUnit::Microsecond if value % 1000 == 0 => value / 1000,
        _ => return None,
    };
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|t| json!(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()))
}
