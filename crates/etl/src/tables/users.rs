//! `users(user_id, first_name, last_name, gender, level)`: one row per user
//! who played a song, with the attributes of the user's latest such event by
//! `ts` (users move between free and paid). Ties on `ts` go to the event read
//! last, so reruns agree.

use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::prelude::{DataFrame, cast, col, ident, lit};

use super::{Clustering, Staged, TableDef, distinct_count, first_per_key, song_plays};

pub const TABLE: TableDef = TableDef {
    name: "users",
    partition_by: &[],
    sort_by: &["user_id"],
    clustering: Clustering::Single,
    plan: users_plan,
    expected_rows,
    charts: &[],
};

fn users_plan(staged: &Staged) -> Result<DataFrame> {
    let plays = song_plays(&staged.events)?
        .filter(ident("userId").not_eq(lit("")))?
        .select(vec![
            cast(ident("userId"), DataType::Int32).alias("user_id"),
            ident("firstName").alias("first_name"),
            ident("lastName").alias("last_name"),
            col("gender"),
            col("level"),
            col("ts"),
            col("record_id"),
        ])?;
    first_per_key(
        plays,
        "user_id",
        vec![
            ("first_name", col("first_name")),
            ("last_name", col("last_name")),
            ("gender", col("gender")),
            ("level", col("level")),
        ],
        vec![
            col("ts").sort(false, true),
            col("record_id").sort(false, true),
        ],
    )
}

/// One row per logged-in user who played a song.
fn expected_rows(staged: &Staged) -> Result<DataFrame> {
    let plays = song_plays(&staged.events)?.filter(ident("userId").not_eq(lit("")))?;
    distinct_count(plays, cast(ident("userId"), DataType::Int32))
}
