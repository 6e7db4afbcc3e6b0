//! Staged records in memory for the tables' unit tests: each rule runs on
//! plain DataFusion over a few JSON records, with no engine and no files,
//! so a rule change fails in seconds.

use std::io::Cursor;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::ReaderBuilder;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::{DataFrame, SessionContext, col};

use super::{Staged, TableDef};
use crate::schema::InputKind;

/// Staged songs and events, each a JSON object of the input's fields plus
/// its `record_id` (the order a run reads records in).
pub fn staged(songs: &[&str], events: &[&str]) -> Staged {
    let ctx = SessionContext::new();
    let frame = |kind: InputKind, records: &[&str]| {
        ctx.read_batch(batch(kind.scan_schema(), records))
            .expect("a frame over one batch")
    };
    Staged {
        songs: frame(InputKind::Songs, songs),
        events: frame(InputKind::Events, events),
        published_times: None,
    }
}

fn batch(schema: SchemaRef, records: &[&str]) -> RecordBatch {
    if records.is_empty() {
        return RecordBatch::new_empty(schema);
    }
    let mut reader = ReaderBuilder::new(schema)
        .build(Cursor::new(records.join("\n")))
        .expect("a JSON reader");
    reader.next().expect("one batch").expect("valid records")
}

/// The table's rows in the order of its partition and sort columns, each
/// as its values joined by `, ` (nulls as `null`); and each column as
/// `name: type`.
pub async fn table(def: &TableDef, staged: &Staged) -> (Vec<String>, Vec<String>) {
    let frame: DataFrame = (def.plan)(staged).expect("a plan");
    let columns = frame
        .schema()
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect();
    let order = def
        .partition_by
        .iter()
        .chain(def.sort_by)
        .map(|c| col(*c).sort(true, false))
        .collect();
    let batches = frame.sort(order).unwrap().collect().await.unwrap();
    (batches.iter().flat_map(rows).collect(), columns)
}

fn rows(batch: &RecordBatch) -> Vec<String> {
    let options = FormatOptions::default().with_null("null");
    let formatters: Vec<ArrayFormatter> = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
        .collect();
    (0..batch.num_rows())
        .map(|row| {
            let values: Vec<String> = formatters
                .iter()
                .map(|f| f.value(row).to_string())
                .collect();
            values.join(", ")
        })
        .collect()
}

/// The count the run checks the table's written rows against.
pub async fn expected_rows(def: &TableDef, staged: &Staged) -> i64 {
    let batches = (def.expected_rows)(staged)
        .unwrap()
        .collect()
        .await
        .unwrap();
    let rows = batches[0].column_by_name("rows").expect("a rows column");
    datafusion::arrow::compute::cast(rows, &datafusion::arrow::datatypes::DataType::Int64)
        .unwrap()
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Int64Array>()
        .unwrap()
        .value(0)
}
