//! `users(user_id, first_name, last_name, gender, level)`: one row per user
//! who played a song, with the attributes of the user's latest such event by
//! `ts` (users move between free and paid). Ties on `ts` go to the event with
//! the larger record id (in one file, the later line), so reruns agree. An
//! incremental run rebuilds it from every staged event, old and new.

use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::prelude::{DataFrame, cast, col, ident, lit};

use super::{Clustering, Staged, TableDef, Update, distinct_count, first_per_key, song_plays};
use crate::schema::InputKind;

pub const TABLE: TableDef = TableDef {
    name: "users",
    input: InputKind::Events,
    partition_by: &[],
    sort_by: &["user_id"],
    clustering: Clustering::Single,
    plan: users_plan,
    update: Update::Rebuild,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::fixture::{expected_rows, staged, table};

    const COLUMNS: [&str; 5] = [
        "user_id: Int32",
        "first_name: Utf8",
        "last_name: Utf8",
        "gender: Utf8",
        "level: Utf8",
    ];

    /// A NextSong event of `user` at `ts`, read as record `record`.
    fn play(user: &str, level: &str, ts: i64, record: i64) -> String {
        format!(
            r#"{{"page":"NextSong","userId":"{user}","firstName":"F{user}","lastName":"L{user}","gender":"F","level":"{level}","ts":{ts},"record_id":{record}}}"#
        )
    }

    #[tokio::test]
    async fn a_user_keeps_the_level_of_the_latest_play() {
        let events = [
            play("7", "free", 1000, 1),
            play("7", "paid", 2000, 2),
            play("7", "free", 500, 9),
            // A tie on ts goes to the event with the larger record id.
            play("8", "free", 3000, 4),
            play("8", "paid", 3000, 5),
            // Logged out, and not a play: neither makes a user.
            play("", "free", 4000, 6),
            r#"{"page":"Home","userId":"9","level":"free","ts":9999,"record_id":10}"#.into(),
        ];
        let events: Vec<&str> = events.iter().map(String::as_str).collect();
        let staged = staged(&[], &events);
        let (rows, columns) = table(&TABLE, &staged).await;
        assert_eq!(columns, COLUMNS);
        assert_eq!(rows, ["7, F7, L7, F, paid", "8, F8, L8, F, paid"]);
        assert_eq!(expected_rows(&TABLE, &staged).await, 2);
    }
}
