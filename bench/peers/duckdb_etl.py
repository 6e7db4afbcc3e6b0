"""The five Sparkify tables in DuckDB, with Sparkify Lake's semantics.

A peer for the benchmark harness (`bench/run.py`): same input, same rows,
same hive layout as `crates/etl/src/tables/`, written the way a DuckDB user
tunes a single-machine job:

- `threads` = cores, `preserve_insertion_order = false` (lets COPY stream in
  parallel without keeping row order), the default memory limit;
- explicit column types (`json_transform` with a fixed structure), never
  sniffing; a JSON number in a VARCHAR column comes out as its text (`66`);
- each table computed once into memory and written with
  `COPY ... (FORMAT parquet, PARTITION_BY (...))`, rows ordered by the
  partition columns so each partition directory gets one file, and enough
  open files allowed for all the song partitions at once;
- session time zone UTC; start_time written as TIMESTAMP WITH TIME ZONE
  (Parquet isAdjustedToUTC), as Sparkify Lake writes it.

Record ids: Sparkify Lake numbers every record by its file's key << bits |
its 1-based position in the file (record_ids.py). `songplay_id` is that
id, songs keep their first record by it, users break ties on `ts` by it.
`read_json` keeps no position, so files are read whole
(`read_text`) and split into lines here: one JSON value per line, as in the
real input. Input files are found as Sparkify Lake finds them (`*.json`, no
part of the path hidden with `_` or `.`), sorted by path; `.json.gz` files
are not supported here (`read_text` does not decompress).

Usage: duckdb_etl.py --input DIR --output DIR [--threads N] [--songs-layout year-artist|year]
Prints one JSON line with the job's own timings (excluding interpreter start).
"""

import argparse
import json
import os
import shutil
import time

import duckdb

from record_ids import file_key, record_bits

# The raw input schemas of crates/etl/src/schema.rs, as json_transform structures.
SONG_COLUMNS = {
    "num_songs": "BIGINT",
    "artist_id": "VARCHAR",
    "artist_latitude": "DOUBLE",
    "artist_longitude": "DOUBLE",
    "artist_location": "VARCHAR",
    "artist_name": "VARCHAR",
    "song_id": "VARCHAR",
    "title": "VARCHAR",
    "duration": "DOUBLE",
    "year": "BIGINT",
}

EVENT_COLUMNS = {
    "artist": "VARCHAR",
    "auth": "VARCHAR",
    "firstName": "VARCHAR",
    "gender": "VARCHAR",
    "itemInSession": "BIGINT",
    "lastName": "VARCHAR",
    "length": "DOUBLE",
    "level": "VARCHAR",
    "location": "VARCHAR",
    "method": "VARCHAR",
    "page": "VARCHAR",
    "registration": "DOUBLE",
    "sessionId": "BIGINT",
    "song": "VARCHAR",
    "status": "BIGINT",
    "ts": "BIGINT",
    "userAgent": "VARCHAR",
    "userId": "VARCHAR",
}


def input_files(folder: str) -> list[str]:
    """`*.json` files under `folder` with no hidden part, sorted by path."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
        found.extend(
            os.path.join(root, f)
            for f in files
            if f.endswith(".json") and not f.startswith(("_", "."))
        )
    return sorted(found)


def load_records(con, table: str, folder: str, columns: dict, required: list[str]) -> None:
    """Creates `table`: the good records of one input kind with their record_id.

    A record is dropped where Sparkify Lake rejects it: malformed JSON, or a
    required field missing (or of the wrong type, which reads as null).
    """
    files = input_files(folder)
    root = os.path.dirname(os.path.normpath(folder))
    bits = record_bits(folder)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE files AS SELECT unnest($keys) AS key, unnest($files) AS file",
        {"files": files, "keys": [file_key(f, root, bits) for f in files]},
    )
    structure = json.dumps(columns)
    not_null = " AND ".join(f'"{c}" IS NOT NULL' for c in required)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        WITH lines AS (
            SELECT filename, list_filter(string_split(content, chr(10)), lambda x: regexp_matches(x, '\\S')) AS lines
            FROM read_text($files)
        ), numbered AS (
            SELECT filename, unnest(lines) AS line, unnest(range(1, len(lines) + 1)) AS position
            FROM lines
        )
        SELECT * FROM (
            SELECT (f.key << {bits}) + n.position AS record_id,
                   unnest(json_transform(n.line, '{structure}'))
            FROM numbered n JOIN files f ON f.file = n.filename
            WHERE json_valid(n.line)
        )
        WHERE {not_null}
        """,
        {"files": files},
    )


TABLES = {
    # One row per song_id: the record with the smallest record id.
    "songs": (
        """
        SELECT song_id, s.title, s.artist_id, s.year::INTEGER AS year, s.duration
        FROM (
            SELECT song_id,
                   arg_min({'title': title, 'artist_id': artist_id, 'year': year, 'duration': duration}, record_id) AS s
            FROM song_records GROUP BY song_id
        )
        """,
        ["year", "artist_id"],
        ["song_id"],
    ),
    # One row per artist_id, whole from the artist's song with the smallest song_id.
    "artists": (
        """
        SELECT artist_id, a.name, a.location, a.latitude, a.longitude
        FROM (
            SELECT artist_id,
                   arg_min({'name': artist_name, 'location': artist_location,
                            'latitude': artist_latitude, 'longitude': artist_longitude},
                           {'song_id': song_id, 'record_id': record_id}) AS a
            FROM song_records GROUP BY artist_id
        )
        """,
        [],
        ["artist_id"],
    ),
    # One row per user who played a song, from their latest play by ts (ties: the larger record id).
    "users": (
        """
        SELECT user_id, u.first_name, u.last_name, u.gender, u.level
        FROM (
            SELECT userId::INTEGER AS user_id,
                   arg_max({'first_name': firstName, 'last_name': lastName, 'gender': gender, 'level': level},
                           {'ts': ts, 'record_id': record_id}) AS u
            FROM plays WHERE userId <> '' GROUP BY ALL
        )
        """,
        [],
        ["user_id"],
    ),
    # One row per distinct start_time; weekday 1 = Sunday, week is the ISO week.
    "time": (
        """
        SELECT start_time,
               hour(start_time)::INTEGER AS hour, day(start_time)::INTEGER AS day,
               week(start_time)::INTEGER AS week, month(start_time)::INTEGER AS month,
               year(start_time)::INTEGER AS year, (dayofweek(start_time) + 1)::INTEGER AS weekday
        FROM (SELECT DISTINCT start_time FROM plays)
        """,
        ["year", "month"],
        ["start_time"],
    ),
    # Each play, left-joined to one song per (title, artist_name, duration): the smallest song_id.
    "songplays": (
        """
        WITH song_keys AS (
            SELECT title, artist_name, duration, min(song_id) AS song_id, arg_min(artist_id, song_id) AS artist_id
            FROM song_records GROUP BY ALL
        )
        SELECT p.record_id AS songplay_id, p.start_time, nullif(p.userId, '')::INTEGER AS user_id,
               p.level, k.song_id, k.artist_id, p.sessionId AS session_id, p.location,
               p.userAgent AS user_agent,
               year(p.start_time)::INTEGER AS year, month(p.start_time)::INTEGER AS month
        FROM plays p LEFT JOIN song_keys k
          ON p.song = k.title AND p.artist = k.artist_name AND p.length = k.duration
        """,
        ["year", "month"],
        ["start_time", "songplay_id"],
    ),
}


# submit --songs-layout: (partition columns, order of rows within a partition)
SONGS_LAYOUTS = {
    "year-artist": (["year", "artist_id"], ["song_id"]),
    "year": (["year"], ["artist_id", "song_id"]),
}


def write_table(con, name: str, query: str, partition_by: list[str], sort_by: list[str], path: str) -> None:
    ordered = ", ".join(partition_by + sort_by)
    if not partition_by:
        os.makedirs(path)
        con.execute(f"COPY (SELECT * FROM ({query}) ORDER BY {ordered}) TO '{path}/data_0.parquet' (FORMAT parquet)")
        return
    # Hive, Spark and Sparkify Lake write an empty partition value as null.
    rows = f"SELECT * REPLACE (nullif(artist_id, '') AS artist_id) FROM ({query})" if "artist_id" in partition_by else query
    con.execute(
        f"""COPY (SELECT * FROM ({rows}) ORDER BY {ordered})
            TO '{path}' (FORMAT parquet, PARTITION_BY ({", ".join(partition_by)}))"""
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--songs-layout", choices=SONGS_LAYOUTS, default="year-artist")
    args = parser.parse_args()

    output = os.path.abspath(args.output)
    shutil.rmtree(output, ignore_errors=True)
    started = time.monotonic()
    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET TimeZone = 'UTC'")
    # Spill files go beside the output, not into the current folder.
    con.execute(f"SET temp_directory = '{output}-spill'")
    session_ready = time.monotonic()

    root = os.path.abspath(args.input)
    load_records(con, "song_records", os.path.join(root, "song_data"), SONG_COLUMNS, ["song_id", "artist_id"])
    # One open file per songs partition, so each gets exactly one file: there
    # are at most as many (year, artist_id) partitions as songs. Slow at
    # scale: at 200,000 songs DuckDB wrote under 1,000 songs files a minute
    # (README, "Where the time goes"): 2.0's partitioned COPY takes time
    # quadratic in the number of partitions (bench/duckdb_partitions.py).
    songs = con.execute("SELECT count(*) FROM song_records").fetchone()[0]
    con.execute(f"SET partitioned_write_max_open_files = {max(songs, 1) + 1}")
    load_records(con, "event_records", os.path.join(root, "log_data"), EVENT_COLUMNS, ["ts", "page"])
    # Sparkify Lake rejects an event whose userId is neither empty nor an int.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE plays AS
        SELECT *, epoch_ms(ts)::TIMESTAMPTZ AS start_time
        FROM event_records
        WHERE page = 'NextSong'
          AND (userId IS NULL OR userId = ''
               OR (regexp_full_match(userId, '[+-]?[0-9]+') AND TRY_CAST(userId AS INTEGER) IS NOT NULL))
        """
    )
    loaded = time.monotonic()

    os.makedirs(output)
    timings = {}
    for name, (query, partition_by, sort_by) in TABLES.items():
        if name == "songs":
            partition_by, sort_by = SONGS_LAYOUTS[args.songs_layout]
        table_started = time.monotonic()
        write_table(con, name, query, partition_by, sort_by, os.path.join(output, name))
        timings[name] = round(time.monotonic() - table_started, 3)
    finished = time.monotonic()
    con.close()
    shutil.rmtree(f"{output}-spill", ignore_errors=True)
    print(
        json.dumps(
            {
                "engine": "duckdb",
                "version": duckdb.__version__,
                "threads": args.threads,
                "startup_seconds": round(session_ready - started, 3),
                "load_seconds": round(loaded - session_ready, 3),
                "job_seconds": round(finished - session_ready, 3),
                "table_seconds": timings,
            }
        )
    )


if __name__ == "__main__":
    main()
