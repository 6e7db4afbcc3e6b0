//! The DataFusion and Ballista settings every role shares: one session
//! config, one runtime (object stores, spill folder), one plan codec.

use std::sync::Arc;

use ballista_core::extension::SessionConfigExt;
use ballista_core::serde::BallistaPhysicalExtensionCodec;
use datafusion::common::Result;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::physical_plan::PhysicalExtensionCodec;
use etl::codec::LakeCodec;

use crate::object_stores::LakeObjectStores;

/// The largest gRPC message any role sends or accepts. A scan's plan carries
/// its input's file list, one path per file: 200,000 song files make a plan
/// of about 16 MiB, Ballista's default limit, and a million about 80 MiB.
pub const MAX_MESSAGE_BYTES: u32 = 256 * 1024 * 1024;

/// Raises each of a role's gRPC message limits to [`MAX_MESSAGE_BYTES`],
/// keeping any that a flag set higher.
pub fn raise_message_limits<const N: usize>(limits: [&mut u32; N]) {
    for limit in limits {
        *limit = (*limit).max(MAX_MESSAGE_BYTES);
    }
}

/// Session settings for the client, the scheduler and the executors.
///
/// - round-robin repartitioning is off: on Ballista every repartition is a
///   shuffle stage, and a shuffle that only rebalances costs more than it gives;
/// - joins are hash joins over both sides shuffled by the join keys, never
///   broadcasts: DataFusion's join selection may broadcast the *preserved*
///   side of an outer join, and on Ballista every task would then emit that
///   side's unmatched rows again (the songplays left join duplicated plays);
/// - `partitions` sets how many tasks each stage runs.
pub fn session_config(partitions: usize) -> SessionConfig {
    let mut config = SessionConfig::new_with_ballista()
        .set_usize(
            "ballista.client.grpc_max_message_size",
            MAX_MESSAGE_BYTES as usize,
        )
        .with_target_partitions(partitions.max(1))
        .with_round_robin_repartition(false)
        .with_ballista_physical_extension_codec(physical_codec());
    let options = config.options_mut();
    options.optimizer.prefer_hash_join = true;
    options.optimizer.hash_join_single_partition_threshold = 0;
    options.optimizer.hash_join_single_partition_threshold_rows = 0;
    options.execution.listing_table_ignore_subdirectory = false;
    config
}

/// Our operators' codec in front of Ballista's.
pub fn physical_codec() -> Arc<dyn PhysicalExtensionCodec> {
    Arc::new(LakeCodec::new(Arc::new(
        BallistaPhysicalExtensionCodec::default(),
    )))
}

/// A runtime whose object stores come from [`LakeObjectStores`]; spill files
/// go to `temp_dir` when given.
pub fn runtime_env(
    stores: Arc<LakeObjectStores>,
    temp_dir: Option<&str>,
) -> Result<Arc<RuntimeEnv>> {
    let mut builder = RuntimeEnvBuilder::new().with_object_store_registry(stores);
    if let Some(dir) = temp_dir {
        builder = builder.with_temp_file_path(dir);
    }
    Ok(Arc::new(builder.build()?))
}

/// The session state the scheduler decodes submitted plans in.
pub fn scheduler_session_state(config: SessionConfig, runtime: Arc<RuntimeEnv>) -> SessionState {
    SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .build()
}

/// The client's planning context, see [`etl::planning_context`].
pub fn planning_context(
    partitions: usize,
    stores: Arc<LakeObjectStores>,
) -> Result<SessionContext> {
    Ok(etl::planning_context(
        session_config(partitions),
        runtime_env(stores, None)?,
    ))
}
