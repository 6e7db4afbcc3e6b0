//! A Parquet file's statistics in Delta's form (`numRecords`, `minValues`,
//! `maxValues`, `nullCount`), taken from the footer the writer just
//! encoded, so that readers skip files without opening them.
//!
//! Worked out on the executor that wrote the file: the footer is in hand
//! there, and the client receives one short JSON text per file. A run
//! writes one file per partition, tens of thousands of one-row files, so
//! the values are read straight off each column chunk's typed statistics
//! rather than through Arrow arrays and `ScalarValue`s.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit};
use datafusion::common::{DataFusionError, Result};
use datafusion::parquet::arrow::parquet_column;
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::parquet::file::statistics::{Statistics, ValueStatistics};
use serde::Serialize;

/// Strings longer than this get no min or max: Delta readers compare the
/// value as a whole, and a key this long would only bloat the log.
const MAX_STAT_STRING: usize = 64;

/// The `stats` of an Add action. Columns are keyed in name order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileStats<'a> {
    num_records: i64,
    min_values: BTreeMap<&'a str, StatValue>,
    max_values: BTreeMap<&'a str, StatValue>,
    null_count: BTreeMap<&'a str, u64>,
}

/// One bound as Delta writes it in JSON.
#[derive(Serialize, Debug, PartialEq)]
#[serde(untagged)]
enum StatValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

/// The statistics of one file whose data columns are `schema`, as the JSON
/// text of an Add action's `stats`.
pub fn file_stats(schema: &Schema, metadata: &ParquetMetaData) -> Result<String> {
    let parquet_schema = metadata.file_metadata().schema_descr();
    let mut stats = FileStats {
        num_records: metadata.file_metadata().num_rows(),
        min_values: BTreeMap::new(),
        max_values: BTreeMap::new(),
        null_count: BTreeMap::new(),
    };
    for field in schema.fields() {
        let Some((column, _)) = parquet_column(parquet_schema, schema, field.name()) else {
            continue;
        };
        let chunks = || {
            metadata
                .row_groups()
                .iter()
                .map(move |group| group.column(column).statistics())
        };
        if let Some(nulls) = chunks()
            .map(|chunk| chunk.and_then(Statistics::null_count_opt))
            .sum::<Option<u64>>()
        {
            stats.null_count.insert(field.name(), nulls);
        }
        if let Some((low, high)) = bounds(field.data_type(), chunks()) {
            stats.min_values.insert(field.name(), low);
            stats.max_values.insert(field.name(), high);
        }
    }
    serde_json::to_string(&stats).map_err(|e| DataFusionError::External(Box::new(e)))
}

/// The file's smallest and largest value of a column of `data_type`, from
/// its chunks' statistics, or `None` where a value has no safe form (NaN and
/// infinities, long strings, types we do not write).
fn bounds<'a>(
    data_type: &DataType,
    chunks: impl Iterator<Item = Option<&'a Statistics>>,
) -> Option<(StatValue, StatValue)> {
    use StatValue::{Bool, Float, Int, Text};
    match data_type {
        DataType::Int8 | DataType::Int16 | DataType::Int32 => {
            both(extremes(chunks, int32)?, |v: i32| Some(Int(v.into())))
        }
        DataType::Int64 => both(extremes(chunks, int64)?, |v: i64| Some(Int(v))),
        DataType::Float32 => both(extremes(chunks, float)?, |v: f32| {
            v.is_finite().then(|| Float(v.into()))
        }),
        DataType::Float64 => both(extremes(chunks, double)?, |v: f64| {
            v.is_finite().then_some(Float(v))
        }),
        DataType::Boolean => both(extremes(chunks, boolean)?, |v: bool| Some(Bool(v))),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let (low, high) = extremes(chunks, byte_array)?;
            let text = |v: &[u8]| {
                let v = std::str::from_utf8(v).ok()?;
                (v.chars().count() <= MAX_STAT_STRING).then(|| Text(v.to_owned()))
            };
            Some((text(low.data())?, text(high.data())?))
        }
        DataType::Timestamp(unit @ (TimeUnit::Millisecond | TimeUnit::Microsecond), _) => {
            let (low, high) = extremes(chunks, int64)?;
            Some((timestamp(low, *unit)?, timestamp(high, *unit)?))
        }
        DataType::Date32 => both(extremes(chunks, int32)?, |days: i32| {
            chrono::DateTime::from_timestamp(i64::from(days) * 86_400, 0)
                .map(|d| Text(d.format("%Y-%m-%d").to_string()))
        }),
        _ => None,
    }
}

/// Both bounds in Delta's form, or `None` if either has none.
fn both<T>(
    (low, high): (T, T),
    into: impl Fn(T) -> Option<StatValue>,
) -> Option<(StatValue, StatValue)> {
    Some((into(low)?, into(high)?))
}

/// The least minimum and greatest maximum over a file's chunks, or `None`
/// when a chunk has no exact bounds of type `T` (a bound over part of the
/// file would let a reader skip rows it needs; a truncated string is not
/// the value) or two values do not compare (NaN).
fn extremes<'a, T: PartialOrd + Clone + 'a>(
    chunks: impl Iterator<Item = Option<&'a Statistics>>,
    typed: fn(&Statistics) -> Option<&ValueStatistics<T>>,
) -> Option<(T, T)> {
    let mut found: Option<(T, T)> = None;
    for chunk in chunks {
        let values = typed(chunk?)?;
        if !values.min_is_exact() || !values.max_is_exact() {
            return None;
        }
        let (low, high) = (values.min_opt()?, values.max_opt()?);
        found = Some(match found {
            None => (low.clone(), high.clone()),
            Some((least, greatest)) => (
                pick(least, low, Ordering::Less)?,
                pick(greatest, high, Ordering::Greater)?,
            ),
        });
    }
    found
}

/// `candidate` if it lies on the `wanted` side of `current`, else `current`.
fn pick<T: PartialOrd + Clone>(current: T, candidate: &T, wanted: Ordering) -> Option<T> {
    let order = candidate.partial_cmp(&current)?;
    Some(if order == wanted {
        candidate.clone()
    } else {
        current
    })
}

/// The accessors `extremes` takes: a chunk's statistics when they are of
/// the named physical type.
macro_rules! typed_statistics {
    ($($name:ident: $variant:ident of $value:ty;)*) => {$(
        fn $name(s: &Statistics) -> Option<&ValueStatistics<$value>> {
            match s {
                Statistics::$variant(v) => Some(v),
                _ => None,
            }
        }
    )*};
}

typed_statistics! {
    int32: Int32 of i32;
    int64: Int64 of i64;
    float: Float of f32;
    double: Double of f64;
    boolean: Boolean of bool;
    byte_array: ByteArray of datafusion::parquet::data_type::ByteArray;
}

/// A timestamp statistic in Delta's text form, to the millisecond
/// (`2018-11-21T21:56:47.796Z`). A value with finer digits is left out
/// rather than rounded: a rounded bound could exclude the value itself.
fn timestamp(value: i64, unit: TimeUnit) -> Option<StatValue> {
    let millis = match unit {
        TimeUnit::Millisecond => value,
        TimeUnit::Microsecond if value % 1000 == 0 => value / 1000,
        _ => return None,
    };
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|t| StatValue::Text(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use datafusion::arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Float32Array, Float64Array, Int32Array, RecordBatch,
        StringArray, TimestampMicrosecondArray, TimestampMillisecondArray,
    };
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::file::properties::WriterProperties;
    use serde_json::{Value, json};

    /// The stats of `columns` written as a file of row groups of two rows.
    fn stats_of(columns: Vec<(&str, ArrayRef)>) -> Value {
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let properties = WriterProperties::builder()
            .set_max_row_group_row_count(Some(2))
            .build();
        let mut writer =
            ArrowWriter::try_new(Vec::new(), batch.schema(), Some(properties)).unwrap();
        writer.write(&batch).unwrap();
        let metadata = writer.finish().unwrap();
        assert_eq!(
            metadata.num_row_groups(),
            2,
            "the test needs two row groups"
        );
        serde_json::from_str(&file_stats(&batch.schema(), &metadata).unwrap()).unwrap()
    }

    #[test]
    fn bounds_span_every_row_group_and_nulls_add_up() {
        let stats = stats_of(vec![
            (
                "id",
                Arc::new(StringArray::from(vec!["SOB", "SOZ", "SOA"])) as ArrayRef,
            ),
            (
                "year",
                Arc::new(Int32Array::from(vec![Some(2001), None, Some(1999)])),
            ),
            (
                "duration",
                Arc::new(Float64Array::from(vec![3.5, 1.25, 2.0])),
            ),
            ("level", Arc::new(Float32Array::from(vec![0.5, 0.25, 0.75]))),
            (
                "paid",
                Arc::new(BooleanArray::from(vec![false, false, true])),
            ),
            (
                "day",
                Arc::new(Date32Array::from(vec![17_856, 17_857, 17_855])),
            ),
            (
                "start_time",
                Arc::new(TimestampMillisecondArray::from(vec![
                    1_542_837_407_796,
                    1_541_105_830_796,
                    1_543_622_400_000,
                ])),
            ),
        ]);
        assert_eq!(
            stats,
            json!({
                "numRecords": 3,
                "minValues": {"id": "SOA", "year": 1999, "duration": 1.25, "level": 0.25,
                    "paid": false, "day": "2018-11-20", "start_time": "2018-11-01T20:57:10.796Z"},
                "maxValues": {"id": "SOZ", "year": 2001, "duration": 3.5, "level": 0.75,
                    "paid": true, "day": "2018-11-22", "start_time": "2018-12-01T00:00:00.000Z"},
                "nullCount": {"id": 0, "year": 1, "duration": 0, "level": 0, "paid": 0,
                    "day": 0, "start_time": 0},
            })
        );
    }

    #[test]
    fn values_without_a_safe_bound_are_left_out() {
        let long = "x".repeat(MAX_STAT_STRING + 1);
        let stats = stats_of(vec![
            (
                "title",
                Arc::new(StringArray::from(vec!["a", long.as_str(), "b"])) as ArrayRef,
            ),
            // The second row group holds only a null: it has no bounds.
            (
                "artist",
                Arc::new(StringArray::from(vec![Some("x"), Some("y"), None])),
            ),
            (
                "duration",
                Arc::new(Float64Array::from(vec![1.0, f64::INFINITY, 2.0])),
            ),
            (
                "at",
                Arc::new(TimestampMicrosecondArray::from(vec![1_000, 2_000, 3_001])),
            ),
        ]);
        assert_eq!(
            stats,
            json!({
                "numRecords": 3,
                "minValues": {},
                "maxValues": {},
                "nullCount": {"title": 0, "artist": 1, "duration": 0, "at": 0},
            })
        );
    }

    #[test]
    fn whole_milliseconds_keep_their_bounds_and_truncated_text_does_not() {
        // 64 characters of two bytes each: longer than Parquet's 64-byte
        // statistics, so truncated there, and left out here.
        let wide = "é".repeat(MAX_STAT_STRING);
        let stats = stats_of(vec![
            (
                "name",
                Arc::new(StringArray::from(vec!["a", "b", wide.as_str()])) as ArrayRef,
            ),
            (
                "at",
                Arc::new(TimestampMicrosecondArray::from(vec![3_000, 1_000, 2_000])),
            ),
        ]);
        assert_eq!(
            stats["minValues"],
            json!({"at": "1970-01-01T00:00:00.001Z"})
        );
        assert_eq!(
            stats["maxValues"],
            json!({"at": "1970-01-01T00:00:00.003Z"})
        );
    }
}
