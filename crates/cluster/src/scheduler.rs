//! A Ballista scheduler with our setup: the plan codec that knows our
//! operators, and the object stores plans refer to.

use std::net::SocketAddr;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use ballista_core::error::BallistaError;
use ballista_core::extension::BallistaConfigGrpcEndpoint;
use ballista_core::flight_proxy_service::BallistaFlightProxyService;
use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpcServer;
use ballista_scheduler::api::get_routes;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::create_scheduler;
use ballista_scheduler::scheduler_server::SchedulerServer;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use etl::allowed::AllowedLocations;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;

use crate::object_stores::LakeObjectStores;
use crate::session::{
    fenced_session_config, physical_codec, raise_message_limits, runtime_env,
    scheduler_session_state,
};

/// Adds our codec, session and object stores to a scheduler configuration,
/// and raises its gRPC message limits to
/// [`MAX_MESSAGE_BYTES`](crate::session::MAX_MESSAGE_BYTES). Submitted plans
/// may touch only the `allowed` locations.
/// The scheduling policy is the caller's (`--scheduler-policy`).
pub fn with_lake_setup(config: SchedulerConfig, allowed: AllowedLocations) -> SchedulerConfig {
    let stores = Arc::new(LakeObjectStores::fenced(allowed.clone()));
    let codec = physical_codec(allowed.clone());
    let mut config = config
        .with_override_config_producer(Arc::new(move || fenced_session_config(1, allowed.clone())))
        .with_override_session_builder(Arc::new(move |config| {
            Ok(scheduler_session_state(
                config,
                runtime_env(Arc::clone(&stores), None)?,
            ))
        }));
    config.override_physical_codec = Some(codec);
    raise_message_limits([
        &mut config.grpc_server_max_decoding_message_size,
        &mut config.grpc_server_max_encoding_message_size,
        &mut config.grpc_client_max_message_size,
    ]);
    config
}

type Scheduler = SchedulerServer<LogicalPlanNode, PhysicalPlanNode>;

/// Serves the scheduler on `listener` until the process ends: Ballista's
/// gRPC service and REST API (with `/api/metrics` in Prometheus's format),
/// the `/healthz` and `/readyz` probes, and our `/api/job/{id}/shuffle` (see
/// [`crate::shuffle`]). Ballista's `start_grpc_service_with_listener` takes
/// no extra routes, so this composes the same services itself; it leaves out
/// the Flight SQL frontend and KEDA scaler, features we do not build.
pub async fn serve(
    config: SchedulerConfig,
    listener: TcpListener,
) -> ballista_core::error::Result<()> {
    config.validate()?;
    let cluster = BallistaCluster::new_from_config(&config).await?;
    let jobs = cluster.job_state();
    let config = Arc::new(config);
    let scheduler =
        create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::clone(&config)).await?;
    let router = get_routes(Arc::new(scheduler.clone()))
        .merge(health_routes(scheduler.clone()))
        .merge(crate::shuffle::routes(jobs))
        .merge(grpc_routes(&config, scheduler).into_axum_router());
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .map_err(BallistaError::from)
}

/// `/healthz` answers while the process serves; `/readyz` once at least
/// `--min-ready-executors` executors are registered. Ballista mounts the
/// same probes in its own `start_grpc_service_with_listener`, which takes no
/// extra routes and keeps its probe handlers to itself.
fn health_routes(scheduler: Scheduler) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(Arc::new(scheduler))
}

async fn readyz(State(scheduler): State<Arc<Scheduler>>) -> (StatusCode, String) {
    let required = scheduler.state.config.min_ready_executors;
    if scheduler.is_ready() {
        (StatusCode::OK, "ready\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: fewer than {required} executors registered (--min-ready-executors)\n"
            ),
        )
    }
}

/// The scheduler's gRPC service, and the Flight proxy when
/// `--enable-embedded-flight-proxy` asks for it.
fn grpc_routes(config: &SchedulerConfig, scheduler: Scheduler) -> tonic::service::Routes {
    let max_decoding = config.grpc_server_max_decoding_message_size as usize;
    let max_encoding = config.grpc_server_max_encoding_message_size as usize;
    let mut routes = RoutesBuilder::default();
    routes.add_service(
        SchedulerGrpcServer::new(scheduler)
            .max_encoding_message_size(max_encoding)
            .max_decoding_message_size(max_decoding),
    );
    if config.enable_embedded_flight_proxy {
        let endpoint = config
            .override_create_grpc_client_endpoint
            .clone()
            .map(|f| Arc::new(BallistaConfigGrpcEndpoint::new(f)));
        let proxy =
            BallistaFlightProxyService::new(max_decoding, max_encoding, config.use_tls, endpoint);
        routes.add_service(
            FlightServiceServer::new(proxy)
                .max_decoding_message_size(max_decoding)
                .max_encoding_message_size(max_encoding),
        );
    }
    routes.routes()
}
