//! Reading a published run back: resolve `_LATEST`, register the five
//! tables as hive-partitioned Parquet, query them with SQL.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use object_store::ObjectStore;

/// The tables and their partition columns, as the Spark job wrote them.
pub const TABLES: [(&str, &[(&str, DataType)]); 5] = [
    (
        "songs",
        &[("year", DataType::Int32), ("artist_id", DataType::Utf8)],
    ),
    ("artists", &[]),
    ("users", &[]),
    (
        "time",
        &[("year", DataType::Int32), ("month", DataType::Int32)],
    ),
    (
        "songplays",
        &[("year", DataType::Int32), ("month", DataType::Int32)],
    ),
];

/// A committed run, readable with SQL.
pub struct Published {
    pub ctx: SessionContext,
    /// URL of the run's folder, e.g. `file:///tmp/x/run-…`.
    pub run_dir: String,
    pub run_id: String,
}

impl Published {
    /// The run `<output>/_LATEST` names, in a local output folder.
    pub async fn local(output: &Path) -> Self {
        let latest = std::fs::read_to_string(output.join("_LATEST"))
            .unwrap_or_else(|e| panic!("{}/_LATEST: {e}", output.display()));
        let run_id = latest.trim().to_string();
        let run_dir = format!(
            "file://{}/{run_id}",
            output.canonicalize().expect("output exists").display()
        );
        Self::open(reader(), run_dir, run_id).await
    }

    /// The run `<output>/_LATEST` names, in an object store registered for `output_url`'s scheme and bucket.
    pub async fn in_store(
        store: Arc<dyn ObjectStore>,
        store_url: &str,
        output_prefix: &str,
    ) -> Self {
        use object_store::ObjectStoreExt;
        let ctx = reader();
        let url = url_of(store_url);
        ctx.register_object_store(&url, Arc::clone(&store));
        let latest = store
            .get(&format!("{output_prefix}/_LATEST").into())
            .await
            .expect("_LATEST exists")
            .bytes()
            .await
            .expect("_LATEST readable");
        let run_id = String::from_utf8_lossy(&latest).trim().to_string();
        let run_dir = format!("{store_url}/{output_prefix}/{run_id}");
        Self::open(ctx, run_dir, run_id).await
    }

    async fn open(ctx: SessionContext, run_dir: String, run_id: String) -> Self {
        for (table, partitions) in TABLES {
            let partitions: Vec<(String, DataType)> = partitions
                .iter()
                .map(|(name, t)| (name.to_string(), t.clone()))
                .collect();
            let options = ParquetReadOptions::default().table_partition_cols(partitions);
            ctx.register_parquet(table, format!("{run_dir}/{table}/"), options)
                .await
                .unwrap_or_else(|e| panic!("registering {table}: {e}"));
        }
        Self {
            ctx,
            run_dir,
            run_id,
        }
    }

    pub async fn query(&self, sql: &str) -> Vec<RecordBatch> {
        let frame = self
            .ctx
            .sql(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        frame
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The result of a query, each value as text (`NULL` for null).
    pub async fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for batch in self.query(sql).await {
            let formatters: Vec<_> = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formattable"))
                .collect();
            for row in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .map(|f| f.value(row).to_string())
                        .collect(),
                );
            }
        }
        rows
    }

    /// A single number a query returns.
    pub async fn number(&self, sql: &str) -> i64 {
        let rows = self.rows(sql).await;
        assert_eq!(rows.len(), 1, "{sql} gave {rows:?}");
        rows[0][0]
            .parse()
            .unwrap_or_else(|e| panic!("{sql} gave {rows:?}: {e}"))
    }

    pub async fn count(&self, table: &str) -> i64 {
        self.number(&format!("SELECT count(*) FROM {table}")).await
    }

    pub async fn schema(&self, table: &str) -> SchemaRef {
        self.ctx
            .table(table)
            .await
            .expect("table registered")
            .schema()
            .inner()
            .clone()
    }
}

/// A reader that reports the types stored in the files: DataFusion would
/// otherwise read every string column as `Utf8View`, hiding what was written.
fn reader() -> SessionContext {
    let config = SessionConfig::new().set_bool(
        "datafusion.execution.parquet.schema_force_view_types",
        false,
    );
    SessionContext::new_with_config(config)
}

fn url_of(store_url: &str) -> url::Url {
    url::Url::parse(store_url).expect("store URL")
}
