//! The report's one statistic that takes a job: songplays per user, as
//! (plays, users with that many plays). It is counted on the executors
//! from the staged plays (every NextSong event is one songplay, which the
//! row-count check holds the table to), so only one row per distinct count
//! reaches the client.

use datafusion::arrow::array::RecordBatch;
use datafusion::common::cast::as_int64_array;
use datafusion::error::{DataFusionError, Result};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::prelude::{DataFrame, col, lit};

use crate::tables::{Staged, song_plays, songplays};

/// The job's name, and what its errors say they were about.
pub const JOB: &str = "songplays per user";

/// The query: `plays` per user, then `users` per number of plays.
pub fn query(staged: &Staged) -> Result<DataFrame> {
    song_plays(&staged.events)?
        .aggregate(
            vec![songplays::user_id().alias("user_id")],
            vec![count(lit(1)).alias("plays")],
        )?
        .aggregate(vec![col("plays")], vec![count(lit(1)).alias("users")])
}

/// The (plays, users) pairs of the query's result.
pub fn pairs(batches: &[RecordBatch]) -> Result<Vec<(u64, u64)>> {
    let column = |batch: &RecordBatch, name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| DataFusionError::Internal(format!("no column '{name}' in {JOB}")))
            .cloned()
    };
    let mut pairs = Vec::new();
    for batch in batches {
        let (plays, users) = (column(batch, "plays")?, column(batch, "users")?);
        let (plays, users) = (as_int64_array(&plays)?, as_int64_array(&users)?);
        pairs.extend(
            plays
                .values()
                .iter()
                .zip(users.values())
                .map(|(p, u)| (*p as u64, *u as u64)),
        );
    }
    Ok(pairs)
}
