//! The Sparkify ETL: raw song and event JSON in, a star schema of
//! hive-partitioned Parquet tables out.
//!
//! The library is engine-agnostic: it builds DataFusion physical plans on the
//! client and hands them to an [`run::Engine`] (Ballista in-process or on a
//! cluster, see the `cluster` crate). Where to look:
//!
//! - [`schema`]: the raw input schemas, explicit;
//! - [`extract`]: listing and decoding the input, the raw scan operator;
//! - [`tables`]: one module per output table;
//! - [`load`]: the partitioned Parquet writer and the publish protocol;
//! - [`storage`]: a location's objects, on local disk or in a store, and
//!   [`local_disk`]: batched reads and writes of small local files;
//! - [`run`]: the steps of a run; [`report`]: what it did, in numbers;
//! - [`codec`]: how our operators travel inside Ballista plans, and
//!   [`allowed`]: the locations a plan may name on a shared cluster.

pub mod allowed;
pub mod codec;
pub mod crash;
pub mod error;
pub mod extract;
pub mod load;
pub mod local_disk;
pub mod location;
pub mod report;
pub mod run;
pub mod schema;
pub mod storage;
pub mod tables;

use std::sync::Arc;

use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionContext;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionConfig;

/// The context the client plans a run in: DataFusion's, with the planner
/// that knows how to write tables.
pub fn planning_context(config: SessionConfig, runtime: Arc<RuntimeEnv>) -> SessionContext {
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_query_planner(Arc::new(load::plan::LakeQueryPlanner))
        .build();
    SessionContext::new_with_state(state)
}
