//! A Ballista scheduler with our setup: the plan codec that knows our
//! operators, and the object stores plans refer to.

use std::sync::Arc;

use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use tokio::net::TcpListener;

use crate::object_stores::LakeObjectStores;
use crate::session::{physical_codec, runtime_env, scheduler_session_state, session_config};

/// Adds our codec, session and object stores to a scheduler configuration.
/// The scheduling policy is the caller's (`--scheduler-policy`).
pub fn with_lake_setup(config: SchedulerConfig) -> SchedulerConfig {
    let stores = Arc::new(LakeObjectStores::new());
    let mut config = config
        .with_override_config_producer(Arc::new(|| session_config(1)))
        .with_override_session_builder(Arc::new(move |config| {
            Ok(scheduler_session_state(
                config,
                runtime_env(Arc::clone(&stores), None)?,
            ))
        }));
    config.override_physical_codec = Some(physical_codec());
    config
}

/// Serves the scheduler (gRPC and REST) on `listener` until the process ends.
pub async fn serve(
    config: SchedulerConfig,
    listener: TcpListener,
) -> ballista_core::error::Result<()> {
    config.validate()?;
    let cluster = BallistaCluster::new_from_config(&config).await?;
    let scheduler =
        create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(config)).await?;
    start_grpc_service_with_listener(listener, scheduler).await
}
