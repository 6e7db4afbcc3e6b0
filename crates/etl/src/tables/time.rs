//! `time(start_time, hour, day, week, month, year, weekday)`: one row per
//! distinct start_time of a song play, partitioned by year and month.
//! `day` is the day of the month, `week` the ISO week, and `weekday` counts
//! as Spark's `dayofweek` does: 1 = Sunday … 7 = Saturday.

use datafusion::error::Result;
use datafusion::prelude::{DataFrame, col, lit};

use super::{
    Clustering, PartitionChart, Staged, TableDef, distinct_count, song_plays, start_time, time_part,
};

pub const TABLE: TableDef = TableDef {
    name: "time",
    partition_by: &["year", "month"],
    sort_by: &["start_time"],
    clustering: Clustering::Spread,
    plan: time_plan,
    expected_rows,
    charts: &[PartitionChart::RowsBy(&["year", "month"])],
};

fn time_plan(staged: &Staged) -> Result<DataFrame> {
    song_plays(&staged.events)?
        .select(vec![start_time().alias("start_time")])?
        .distinct()?
        .select(vec![
            col("start_time"),
            time_part("hour").alias("hour"),
            time_part("day").alias("day"),
            time_part("week").alias("week"),
            time_part("month").alias("month"),
            time_part("year").alias("year"),
            (time_part("dow") + lit(1)).alias("weekday"),
        ])
}

/// One row per distinct start time of a play (`ts` to the millisecond).
fn expected_rows(staged: &Staged) -> Result<DataFrame> {
    distinct_count(song_plays(&staged.events)?, col("ts"))
}
