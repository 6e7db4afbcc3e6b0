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
use etl::allowed::AllowedLocations;
use etl::codec::LakeCodec;

use crate::object_stores::LakeObjectStores;

/// The largest gRPC message any role sends or accepts. Plans once carried
/// their scan's file list, one path per file, and passed Ballista's default
/// of 16 MiB at 200,000 song files; the lists are now in the store
/// (`etl::extract::file_list`) and a plan stays a few KiB. The limit stays
/// raised as headroom for results, which name every file a writer wrote.
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
    fenced_session_config(partitions, AllowedLocations::anywhere())
}

/// [`session_config`] for a scheduler or executor whose plans may touch
/// only the `allowed` locations.
pub fn fenced_session_config(partitions: usize, allowed: AllowedLocations) -> SessionConfig {
    let mut config = SessionConfig::new_with_ballista()
        .set_usize(
            "ballista.client.grpc_max_message_size",
            MAX_MESSAGE_BYTES as usize,
        )
        .with_target_partitions(partitions.max(1))
        .with_round_robin_repartition(false)
        .with_ballista_physical_extension_codec(physical_codec(allowed));
    let options = config.options_mut();
    options.optimizer.prefer_hash_join = true;
    options.optimizer.hash_join_single_partition_threshold = 0;
    options.optimizer.hash_join_single_partition_threshold_rows = 0;
    options.execution.listing_table_ignore_subdirectory = false;
    config
}

/// Our operators' codec in front of Ballista's, refusing operators that
/// touch anything outside `allowed`.
pub fn physical_codec(allowed: AllowedLocations) -> Arc<dyn PhysicalExtensionCodec> {
    Arc::new(LakeCodec::new(
        Arc::new(BallistaPhysicalExtensionCodec::default()),
        allowed,
    ))
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
    config: SessionConfig,
    stores: Arc<LakeObjectStores>,
) -> Result<SessionContext> {
    Ok(etl::planning_context(config, runtime_env(stores, None)?))
}

/// Settings [`session_config`] fixes because the jobs are correct or
/// bounded only with them, and why; `--conf` refuses to change them.
const PROTECTED: &[(&str, &str)] = &[
    ("datafusion.execution.target_partitions", "use --partitions"),
    (
        "datafusion.optimizer.prefer_hash_join",
        "the joins must be shuffled hash joins (a broadcast outer join duplicates plays)",
    ),
    (
        "datafusion.optimizer.hash_join_single_partition_threshold",
        "the joins must be shuffled hash joins (a broadcast outer join duplicates plays)",
    ),
    (
        "datafusion.optimizer.hash_join_single_partition_threshold_rows",
        "the joins must be shuffled hash joins (a broadcast outer join duplicates plays)",
    ),
    (
        "datafusion.optimizer.enable_round_robin_repartition",
        "on Ballista every repartition is a shuffle stage",
    ),
    (
        "datafusion.execution.listing_table_ignore_subdirectory",
        "the input is read from nested folders",
    ),
];

/// Applies `--conf key=value` settings (DataFusion's `datafusion.*` and
/// Ballista's `ballista.*` keys) to a session, as `spark-submit --conf`
/// does; they travel with every job to the scheduler and executors.
/// Unknown keys, bad values and the [`PROTECTED`] settings are refused.
pub fn with_settings(
    mut config: SessionConfig,
    settings: &[(String, String)],
) -> std::result::Result<SessionConfig, String> {
    for (key, value) in settings {
        if let Some((_, why)) = PROTECTED.iter().find(|(name, _)| name == key) {
            return Err(format!(
                "--conf {key}: set by Sparkify Lake and not changeable: {why}"
            ));
        }
        config
            .options_mut()
            .set(key, value)
            .map_err(|e| format!("--conf {key}={value}: {}", e.find_root()))?;
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &str, value: &str) -> std::result::Result<SessionConfig, String> {
        with_settings(session_config(2), &[(key.to_string(), value.to_string())])
    }

    #[test]
    fn settings_reach_the_session() {
        let config = set("datafusion.execution.batch_size", "1024").unwrap();
        assert_eq!(config.batch_size(), 1024);
        let config = set("datafusion.execution.parquet.pushdown_filters", "true").unwrap();
        assert!(config.options().execution.parquet.pushdown_filters);
    }

    #[test]
    fn protected_unknown_and_bad_settings_are_refused() {
        let protected = set("datafusion.optimizer.prefer_hash_join", "false").unwrap_err();
        assert!(protected.contains("not changeable"), "{protected}");
        assert!(set("datafusion.execution.no_such_thing", "1").is_err());
        let bad = set("datafusion.execution.batch_size", "many").unwrap_err();
        assert!(
            bad.starts_with("--conf datafusion.execution.batch_size=many: "),
            "{bad}"
        );
    }
}
