//! `submit --explain`: a job's physical plan as Ballista would run it, cut
//! into stages at its shuffles by Ballista's own distributed planner,
//! without running anything.

use std::sync::Arc;

use ballista_core::JobId;
use ballista_core::execution_plans::ShuffleWriter;
use ballista_scheduler::planner::{DefaultDistributedPlanner, DistributedPlanner};
use datafusion::common::{DataFusionError, Result};
use datafusion::config::ConfigOptions;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode, SortMergeJoinExec};
use datafusion::physical_plan::{ExecutionPlan, Partitioning, displayable};

/// The stages of `plan`, in the order they run: what each reads, how its
/// output is shuffled, how its joins run, and its plan fragment.
pub fn distributed_plan(plan: Arc<dyn ExecutionPlan>, config: &ConfigOptions) -> Result<String> {
    let job = JobId::from("explain");
    let stages = DefaultDistributedPlanner::new()
        .plan_query_stages(&job, plan, config)
        .map_err(|e| DataFusionError::External(e.into()))?;
    let last = stages.last().map(|s| s.stage_id());
    let mut text = String::new();
    for stage in &stages {
        text.push_str(&format!(
            "stage {} ({} partitions): output {}\n",
            stage.stage_id(),
            stage.input_partition_count(),
            output(stage.as_ref(), Some(stage.stage_id()) == last),
        ));
        for join in joins(stage.clone_box()) {
            text.push_str(&format!("  join: {join}\n"));
        }
        let fragment = displayable(stage.as_ref()).indent(false).to_string();
        for line in fragment.lines() {
            text.push_str(&format!("    {line}\n"));
        }
    }
    Ok(text)
}

/// Where a stage's rows go.
fn output(stage: &dyn ShuffleWriter, is_last: bool) -> String {
    match stage.shuffle_output_partitioning() {
        Some(Partitioning::Hash(keys, partitions)) => {
            let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
            format!(
                "hash-shuffled on [{}] into {partitions} partitions",
                keys.join(", ")
            )
        }
        Some(other) => format!("shuffled as {other}"),
        None if is_last => "is the job's result (the list of files written)".to_string(),
        None => "kept in its partitions for the next stage".to_string(),
    }
}

/// How each join in a stage runs: shuffled on both sides, or with one side
/// broadcast to every task.
fn joins(plan: Arc<dyn ExecutionPlan>) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![plan];
    while let Some(node) = pending.pop() {
        if let Some(join) = node.downcast_ref::<HashJoinExec>() {
            let keys: Vec<String> = join
                .on()
                .iter()
                .map(|(l, r)| format!("{l} = {r}"))
                .collect();
            let how = match join.partition_mode() {
                PartitionMode::CollectLeft => "hash join, build side broadcast to every task",
                PartitionMode::Partitioned => "hash join, both sides hash-shuffled on the keys",
                PartitionMode::Auto => "hash join, mode decided at run time",
            };
            found.push(format!(
                "{} {how}, on {}",
                join.join_type(),
                keys.join(", ")
            ));
        } else if let Some(join) = node.downcast_ref::<SortMergeJoinExec>() {
            found.push(format!(
                "{} sort-merge join, both sides shuffled and sorted",
                join.join_type()
            ));
        }
        pending.extend(node.children().into_iter().cloned());
    }
    found
}
