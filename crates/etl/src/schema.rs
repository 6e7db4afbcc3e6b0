//! The raw input schemas, stated explicitly instead of inferred.
//!
//! Inference over tens of thousands of tiny song files is slow and unstable:
//! a title such as `66` would make the column numeric in one file and a
//! string in the next. The readers in [`crate::extract`] decode with these
//! schemas and coerce JSON numbers into string columns, which is what the
//! Spark job this project replaces produces (`"66"`, `"4.6"`).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

/// Column every raw record carries in addition to its JSON fields: where it
/// came from, packed as `file key << bits | record position within the file`
/// ([`crate::extract::listing::record_id`]; 23 bits for events, 7 for songs). The file key derives from the
/// file's path alone, so the id is unique, the same on every rerun, and
/// unchanged when files are added: songplays take it as their id, and
/// `_ingested` maps a key back to its file.
pub const RECORD_ID: &str = "record_id";

/// Partition column of the staged records: [`STATUS_OK`] or [`STATUS_REJECTED`].
pub const STATUS: &str = "record_status";
pub const STATUS_OK: &str = "ok";
pub const STATUS_REJECTED: &str = "rejected";

/// The columns that describe a rejected record, in the staged records and in
/// the `_rejects` output.
pub fn reject_fields() -> Vec<Field> {
    use DataType::{Int64, Utf8};
    vec![
        nullable("reject_file", Utf8),
        nullable("reject_line", Int64),
        nullable("reject_offset", Int64),
        nullable("reject_reason", Utf8),
        nullable("reject_raw", Utf8),
    ]
}

/// The two kinds of raw input under an input root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum InputKind {
    /// `song_data/**`: one JSON object per file, Million Song Dataset layout.
    Songs,
    /// `log_data/**`: newline-delimited user activity events, one file per day.
    Events,
}

impl InputKind {
    /// Both kinds, in the order a run reads them.
    pub const ALL: [InputKind; 2] = [InputKind::Songs, InputKind::Events];

    /// Folder under the input root that holds this kind of file.
    pub fn folder(self) -> &'static str {
        match self {
            InputKind::Songs => "song_data",
            InputKind::Events => "log_data",
        }
    }

    /// Short name used in reports, reject files and plan displays.
    pub fn name(self) -> &'static str {
        match self {
            InputKind::Songs => "songs",
            InputKind::Events => "events",
        }
    }

    /// The fields as they appear in the JSON, with the types they are read as.
    pub fn json_schema(self) -> SchemaRef {
        match self {
            InputKind::Songs => song_json_schema(),
            InputKind::Events => event_json_schema(),
        }
    }

    /// The JSON fields plus [`RECORD_ID`]: what a raw scan produces.
    pub fn scan_schema(self) -> SchemaRef {
        let json = self.json_schema();
        let mut fields: Vec<Field> = json.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(RECORD_ID, DataType::Int64, false));
        Arc::new(Schema::new(fields))
    }

    /// What the staging step writes: the scan's records plus the columns that
    /// carry a rejected record (`status` = `rejected`) through the same files,
    /// so that good and bad records are counted by one mechanism.
    pub fn staged_schema(self) -> SchemaRef {
        let mut fields: Vec<Field> = self
            .scan_schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.extend(reject_fields());
        fields.push(Field::new(STATUS, DataType::Utf8, false));
        Arc::new(Schema::new(fields))
    }

    /// Fields without which a record cannot be loaded anywhere; a record that
    /// lacks one is rejected with that reason instead of becoming a null key.
    pub fn required_fields(self) -> &'static [&'static str] {
        match self {
            InputKind::Songs => &["song_id", "artist_id"],
            InputKind::Events => &["ts", "page"],
        }
    }
}

fn nullable(name: &str, data_type: DataType) -> Field {
    Field::new(name, data_type, true)
}

/// A song file of the Million Song Dataset subset.
fn song_json_schema() -> SchemaRef {
    use DataType::{Float64, Int64, Utf8};
    Arc::new(Schema::new(vec![
        nullable("num_songs", Int64),
        nullable("artist_id", Utf8),
        nullable("artist_latitude", Float64),
        nullable("artist_longitude", Float64),
        nullable("artist_location", Utf8),
        nullable("artist_name", Utf8),
        nullable("song_id", Utf8),
        nullable("title", Utf8),
        nullable("duration", Float64),
        nullable("year", Int64),
    ]))
}

/// One line of an event log. `userId` is a string ("" when logged out).
fn event_json_schema() -> SchemaRef {
    use DataType::{Float64, Int64, Utf8};
    Arc::new(Schema::new(vec![
        nullable("artist", Utf8),
        nullable("auth", Utf8),
        nullable("firstName", Utf8),
        nullable("gender", Utf8),
        nullable("itemInSession", Int64),
        nullable("lastName", Utf8),
        nullable("length", Float64),
        nullable("level", Utf8),
        nullable("location", Utf8),
        nullable("method", Utf8),
        nullable("page", Utf8),
        nullable("registration", Float64),
        nullable("sessionId", Int64),
        nullable("song", Utf8),
        nullable("status", Int64),
        nullable("ts", Int64),
        nullable("userAgent", Utf8),
        nullable("userId", Utf8),
    ]))
}
