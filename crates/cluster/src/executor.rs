//! A Ballista executor with our setup: the plan codec that knows our
//! operators, and the object stores it reads input from and writes tables to.

use std::sync::Arc;

use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};

use crate::object_stores::LakeObjectStores;
use crate::session::{fenced_session_config, physical_codec, raise_message_limits, runtime_env};
use etl::allowed::AllowedLocations;

/// Adds our codec, session and object stores to an executor configuration,
/// and raises its gRPC message limits to
/// [`MAX_MESSAGE_BYTES`](crate::session::MAX_MESSAGE_BYTES).
/// Tasks may touch only the `allowed` locations. Spill files go to the
/// executor's work folder; the scheduling policy is the caller's
/// (`--task-scheduling-policy`).
pub fn with_lake_setup(
    mut config: ExecutorProcessConfig,
    allowed: AllowedLocations,
) -> ExecutorProcessConfig {
    let stores = Arc::new(LakeObjectStores::fenced(allowed.clone()));
    let work_dir = config.work_dir.clone();
    let codec = physical_codec(allowed.clone());
    config.override_config_producer =
        Some(Arc::new(move || fenced_session_config(1, allowed.clone())));
    config.override_runtime_producer = Some(Arc::new(move |_| {
        runtime_env(Arc::clone(&stores), work_dir.as_deref())
    }));
    config.override_physical_codec = Some(codec);
    raise_message_limits([
        &mut config.grpc_max_decoding_message_size,
        &mut config.grpc_max_encoding_message_size,
    ]);
    config
}

/// Runs the executor until it is stopped (signal or scheduler request).
pub async fn run(config: ExecutorProcessConfig) -> ballista_core::error::Result<()> {
    start_executor_process(Arc::new(config)).await
}
