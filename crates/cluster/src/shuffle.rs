//! What each stage of a job wrote to its shuffle files (or to the job's
//! output), served by our scheduler at `/api/job/{job_id}/shuffle`.
//!
//! Ballista's own REST API reports rows per stage but not bytes. The bytes
//! are in the execution graph: every block of shuffle output a task writes
//! is recorded as a partition location with the writer's row and byte
//! counts, kept by the stages that read it (and by the graph, for the final
//! stage).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use ballista_core::serde::protobuf;
use ballista_scheduler::cluster::JobState;
use ballista_scheduler::state::execution_graph::ExecutionGraph;
use ballista_scheduler::state::execution_stage::{ExecutionStage, StageOutput};
use serde::{Deserialize, Serialize};

/// The shuffle output of one stage, summed over its blocks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageShuffle {
    pub stage_id: usize,
    /// Shuffle blocks, as Spark calls them: one per map partition and output
    /// partition it wrote rows for (a file each, or a range of one file
    /// under Ballista's sort shuffle).
    pub blocks: usize,
    pub rows: u64,
    pub bytes: u64,
}

/// `/api/job/{job_id}/shuffle`: one entry per stage that has written output.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct JobShuffle {
    pub stages: Vec<StageShuffle>,
}

impl JobShuffle {
    /// The entry of stage `stage_id` (as Ballista's REST API spells it), if
    /// the stage wrote anything.
    pub fn stage(&self, stage_id: &str) -> Option<&StageShuffle> {
        let stage_id: usize = stage_id.parse().ok()?;
        self.stages.iter().find(|s| s.stage_id == stage_id)
    }
}

/// The route, reading finished jobs from the scheduler's job state. A job's
/// graph is stored there before its client learns that it has finished, so
/// a client that asks after its job has ended always finds it.
pub fn routes(jobs: Arc<dyn JobState>) -> Router {
    Router::new()
        .route("/api/job/{job_id}/shuffle", get(job_shuffle))
        .with_state(jobs)
}

async fn job_shuffle(
    State(jobs): State<Arc<dyn JobState>>,
    Path(job_id): Path<String>,
) -> Result<Json<JobShuffle>, (StatusCode, String)> {
    match jobs.get_execution_graph(&job_id.clone().into()).await {
        Ok(Some(graph)) => Ok(Json(summarise(graph.as_ref()))),
        Ok(None) => Err((
            StatusCode::NOT_FOUND,
            format!("no finished job {job_id} on this scheduler"),
        )),
        Err(e) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read job {job_id}: {e}"),
        )),
    }
}

/// Sums the partition locations of a graph by the stage that wrote them.
/// A stage read by several stages has its locations listed by each, so
/// every block is counted once.
fn summarise(graph: &(dyn ExecutionGraph + Send + Sync)) -> JobShuffle {
    let final_outputs = graph.output_locations();
    let read_by_stages = graph
        .stages()
        .values()
        .filter_map(stage_inputs)
        .flat_map(HashMap::values)
        .flat_map(|output| output.partition_locations.values().flatten());
    let mut seen = HashSet::new();
    let mut by_stage: BTreeMap<usize, StageShuffle> = BTreeMap::new();
    for location in read_by_stages.chain(&final_outputs) {
        let id = &location.partition_id;
        let block = (
            id.stage_id,
            id.partition_id,
            location.map_partition_id,
            &location.executor_meta.id,
            location.file_id,
        );
        if !seen.insert(block) {
            continue;
        }
        let stats: protobuf::PartitionStats = location.partition_stats.into();
        let entry = by_stage.entry(id.stage_id).or_insert_with(|| StageShuffle {
            stage_id: id.stage_id,
            ..StageShuffle::default()
        });
        entry.blocks += 1;
        entry.rows += stats.num_rows.max(0) as u64;
        entry.bytes += stats.num_bytes.max(0) as u64;
    }
    JobShuffle {
        stages: by_stage.into_values().collect(),
    }
}

/// The shuffle outputs a stage reads, by the stage that wrote them.
fn stage_inputs(stage: &ExecutionStage) -> Option<&HashMap<usize, StageOutput>> {
    match stage {
        ExecutionStage::UnResolved(s) => Some(&s.inputs),
        ExecutionStage::Resolved(s) => Some(&s.inputs),
        ExecutionStage::Running(s) => Some(&s.inputs),
        ExecutionStage::Successful(s) => Some(&s.inputs),
        ExecutionStage::Failed(_) => None,
    }
}
