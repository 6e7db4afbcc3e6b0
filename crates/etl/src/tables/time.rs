//! `time(start_time, hour, day, week, month, year, weekday)`: one row per
//! distinct start_time of a song play, partitioned by year and month. An
//! incremental run appends the start times of its new plays that the table
//! does not hold yet ([`Staged::published_times`]).
//! `day` is the day of the month, `week` the ISO week, and `weekday` counts
//! as Spark's `dayofweek` does: 1 = Sunday … 7 = Saturday.

use datafusion::common::JoinType;
use datafusion::error::Result;
use datafusion::prelude::{DataFrame, col, lit};

use super::{
    Clustering, PartitionChart, Staged, TableDef, Update, distinct_count, song_plays, start_time,
    time_part,
};
use crate::schema::InputKind;

pub const TABLE: TableDef = TableDef {
    name: "time",
    input: InputKind::Events,
    partition_by: &["year", "month"],
    sort_by: &["start_time"],
    clustering: Clustering::Spread,
    plan: time_plan,
    update: Update::Append {
        matches_songs: false,
    },
    expected_rows,
    charts: &[PartitionChart::RowsBy(&["year", "month"])],
};

fn time_plan(staged: &Staged) -> Result<DataFrame> {
    new_start_times(staged)?.select(vec![
        col("start_time"),
        time_part("hour").alias("hour"),
        time_part("day").alias("day"),
        time_part("week").alias("week"),
        time_part("month").alias("month"),
        time_part("year").alias("year"),
        (time_part("dow") + lit(1)).alias("weekday"),
    ])
}

/// The distinct start times of the plays, less those already published.
fn new_start_times(staged: &Staged) -> Result<DataFrame> {
    let times = song_plays(&staged.events)?
        .select(vec![start_time().alias("start_time")])?
        .distinct()?;
    match &staged.published_times {
        None => Ok(times),
        Some(published) => times.join(
            published
                .clone()
                .select(vec![col("start_time").alias("published")])?,
            JoinType::LeftAnti,
            &["start_time"],
            &["published"],
            None,
        ),
    }
}

/// One row per distinct start time of a play (`ts` to the millisecond)
/// not yet published.
fn expected_rows(staged: &Staged) -> Result<DataFrame> {
    distinct_count(new_start_times(staged)?, col("start_time"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::fixture::{expected_rows, staged, table};

    const COLUMNS: [&str; 7] = [
        r#"start_time: Timestamp(ms, "UTC")"#,
        "hour: Int32",
        "day: Int32",
        "week: Int32",
        "month: Int32",
        "year: Int32",
        "weekday: Int32",
    ];

    #[tokio::test]
    async fn one_row_per_start_time_with_spark_s_calendar() {
        let play = |ts: i64, record: i64| {
            format!(r#"{{"page":"NextSong","ts":{ts},"record_id":{record}}}"#)
        };
        let events = [
            play(1541105830796, 1), // Thursday 2018-11-01 20:57:10.796
            play(1541105830796, 2), // the same instant: one row
            play(1541290555796, 3), // Sunday 2018-11-04, weekday 1
            play(1546257600000, 4), // Monday 2018-12-31: ISO week 1 of 2019
            r#"{"page":"Home","ts":1543536000000,"record_id":5}"#.into(),
        ];
        let events: Vec<&str> = events.iter().map(String::as_str).collect();
        let staged = staged(&[], &events);
        let (rows, columns) = table(&TABLE, &staged).await;
        assert_eq!(columns, COLUMNS);
        assert_eq!(
            rows,
            [
                "2018-11-01T20:57:10.796Z, 20, 1, 44, 11, 2018, 5",
                "2018-11-04T00:15:55.796Z, 0, 4, 44, 11, 2018, 1",
                "2018-12-31T12:00:00Z, 12, 31, 1, 12, 2018, 2",
            ]
        );
        assert_eq!(expected_rows(&TABLE, &staged).await, 3);
    }

    #[tokio::test]
    async fn an_append_leaves_out_the_start_times_already_published() {
        let play = |ts: i64| format!(r#"{{"page":"NextSong","ts":{ts},"record_id":{ts}}}"#);
        let events = [play(1541105830796), play(1541290555796)];
        let events: Vec<&str> = events.iter().map(String::as_str).collect();
        let mut staged = staged(&[], &events);
        let published = staged
            .events
            .clone()
            .filter(col("ts").eq(lit(1541105830796i64)))
            .unwrap()
            .select(vec![start_time().alias("start_time")])
            .unwrap();
        staged.published_times = Some(published);
        let (rows, _) = table(&TABLE, &staged).await;
        assert_eq!(rows, ["2018-11-04T00:15:55.796Z, 0, 4, 44, 11, 2018, 1"]);
        assert_eq!(expected_rows(&TABLE, &staged).await, 1);
    }
}
