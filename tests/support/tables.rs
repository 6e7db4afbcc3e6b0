//! Reading a published run back and querying it with SQL. Delta tables
//! are resolved by readers that are not ours (`tests/tools/delta_tables.py`:
//! delta-rs's Python package and DuckDB's delta extension), which say what
//! files each table's newest version holds and how many rows they read;
//! those files are then queried with DataFusion. Plain Parquet
//! (`--table-format parquet`) is resolved through `_LATEST`.

use std::collections::BTreeMap;
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
    /// URL of a folder holding the five tables' current files: the run's
    /// folder (Parquet), or a copy of what the Delta logs name.
    pub run_dir: String,
    pub run_id: String,
    /// Delta: each table as the other readers saw it.
    pub delta: BTreeMap<String, DeltaView>,
    /// Keeps the copy of the Delta tables' files while this lives.
    _copy: Option<tempfile::TempDir>,
}

/// One Delta table as delta-rs and DuckDB read it.
#[derive(Debug, serde::Deserialize)]
pub struct DeltaView {
    pub version: i64,
    /// Relative to the table, as file names.
    pub files: Vec<String>,
    pub rows_deltalake: i64,
    /// `None` for an output on S3 (DuckDB would need its httpfs extension).
    pub rows_duckdb: Option<i64>,
}

/// Reads `tables` of the Delta lake at `output_url` with the other readers
/// (at `version`, or the newest), with `env` for S3.
pub fn delta_views(
    output_url: &str,
    tables: &[&str],
    version: Option<i64>,
    env: &[(&str, String)],
) -> BTreeMap<String, DeltaView> {
    let python = std::env::var("SPARKIFY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = crate::workspace_root().join("tests/tools/delta_tables.py");
    let mut command = std::process::Command::new(&python);
    command.arg(&script).arg(output_url).args(tables);
    command.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    if let Some(version) = version {
        command.env("SPARKIFY_DELTA_VERSION", version.to_string());
    }
    let out = command.output().unwrap_or_else(|e| {
        panic!("{python}: {e} (the tests read Delta with the packages in tests/requirements.txt; set SPARKIFY_TEST_PYTHON to a Python that has them)")
    });
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

/// Asserts that the five tables of the lakes at `lake` and `reference`
/// hold the same rows in every column, and that songplay_ids are unique, as
/// delta-rs reads them (`tests/tools/compare_lakes.py`); `env` for S3.
pub fn assert_same_tables(lake: &str, reference: &str, env: &[(&str, String)], context: &str) {
    let python = std::env::var("SPARKIFY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = crate::workspace_root().join("tests/tools/compare_lakes.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(lake)
        .arg(reference)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e}"));
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let compared: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (table, result) in compared.as_object().expect("one entry per table") {
        assert_eq!(
            result["equal"], true,
            "{context}: {table} differs from the reference: {result}"
        );
        assert!(
            result["rows"].as_u64() > Some(0),
            "{context}: {table} is empty"
        );
        if table == "songplays" {
            assert_eq!(result["repeated_ids"], 0, "{context}: songplay_ids repeat");
        }
    }
}

/// The run id of the newest run record in a local Delta lake.
pub fn last_run_id(output: &Path) -> String {
    let log = output.join("_runs/_log");
    let mut records: Vec<_> = std::fs::read_dir(&log)
        .unwrap_or_else(|e| panic!("{}: {e}", log.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    records.sort();
    let newest = records.last().expect("a run record");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(newest).unwrap()).unwrap();
    record["run_id"].as_str().unwrap().to_string()
}

impl Published {
    /// The lake in a local output folder: the Delta tables' newest versions
    /// or, with `_LATEST`, the Parquet run it names.
    pub async fn local(output: &Path) -> Self {
        if !output.join("_LATEST").exists() {
            return Self::local_delta(output, None).await;
        }
        let latest = std::fs::read_to_string(output.join("_LATEST"))
            .unwrap_or_else(|e| panic!("{}/_LATEST: {e}", output.display()));
        let run_id = latest.trim().to_string();
        let run_dir = format!(
            "file://{}/{run_id}",
            output.canonicalize().expect("output exists").display()
        );
        Self::open(reader(), run_dir, run_id).await
    }

    /// The local Delta lake's tables at `version` (the newest if `None`).
    pub async fn local_delta(output: &Path, version: Option<i64>) -> Self {
        let output = output.canonicalize().expect("output exists");
        let url = format!("file://{}", output.display());
        let mut names: Vec<&str> = TABLES.iter().map(|(t, _)| *t).collect();
        names.retain(|t| output.join(t).join("_delta_log").exists());
        if output.join("_rejects/_delta_log").exists() {
            names.push("_rejects");
        }
        let views = delta_views(&url, &names, version, &[]);
        let copy = tempfile::tempdir().unwrap();
        for (table, view) in &views {
            for file in &view.files {
                let to = copy.path().join(table).join(file);
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::hard_link(output.join(table).join(file), &to)
                    .unwrap_or_else(|e| panic!("{table}/{file} named by the log: {e}"));
            }
        }
        let run_dir = format!("file://{}", copy.path().display());
        let mut published = Self::open(reader(), run_dir, last_run_id(&output)).await;
        published.delta = views;
        published._copy = Some(copy);
        published
    }

    /// The Delta lake at `s3://<bucket>/<output_prefix>`: the tables'
    /// newest versions, their files fetched to a local copy.
    pub async fn in_delta_store(
        store: Arc<dyn ObjectStore>,
        store_url: &str,
        output_prefix: &str,
        env: &[(&str, String)],
    ) -> Self {
        use object_store::ObjectStoreExt;
        let names: Vec<&str> = TABLES.iter().map(|(t, _)| *t).collect();
        let views = delta_views(&format!("{store_url}/{output_prefix}"), &names, None, env);
        let copy = tempfile::tempdir().unwrap();
        for (table, view) in &views {
            for file in &view.files {
                let key = format!("{output_prefix}/{table}/{file}");
                let bytes = store
                    .get(&object_store::path::Path::parse(&key).unwrap())
                    .await
                    .unwrap_or_else(|e| panic!("{key} named by the log: {e}"))
                    .bytes()
                    .await
                    .unwrap();
                let to = copy.path().join(table).join(file);
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::write(to, bytes).unwrap();
            }
        }
        let log =
            crate::cluster::list(store.as_ref(), &format!("{output_prefix}/_runs/_log")).await;
        let newest = log
            .iter()
            .filter(|k| k.ends_with(".json"))
            .max()
            .expect("a run record");
        let record = store
            .get(&newest.as_str().into())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let record: serde_json::Value = serde_json::from_slice(&record).unwrap();
        let run_id = record["run_id"].as_str().unwrap().to_string();
        let run_dir = format!("file://{}", copy.path().display());
        let mut published = Self::open(reader(), run_dir, run_id).await;
        published.delta = views;
        published._copy = Some(copy);
        published
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
        let local = run_dir.strip_prefix("file://").map(Path::new);
        let rejects = local.map(|dir| dir.join("_rejects"));
        if let Some(rejects) = rejects.filter(|dir| dir.exists()) {
            let url = format!("file://{}/", rejects.display());
            ctx.register_parquet("rejects", url, ParquetReadOptions::default())
                .await
                .unwrap_or_else(|e| panic!("registering the rejects: {e}"));
        }
        for (table, partitions) in TABLES {
            if local.is_some_and(|dir| !dir.join(table).exists()) {
                continue;
            }
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
            delta: BTreeMap::new(),
            _copy: None,
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
