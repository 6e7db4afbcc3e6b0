"""The five Sparkify tables in PySpark (local mode), with Sparkify Lake's semantics.

A peer for the benchmark harness (`bench/run.py`): same input, same rows,
same hive layout as `crates/etl/src/tables/`, written the way a Spark user
tunes a single-machine job:

- `local[N]` with N = cores, driver memory set up front (local mode runs
  everything in the driver JVM);
- explicit schemas, never inference (inference over thousands of tiny files
  is a full extra pass, and a title such as `66` would flip a column's type);
- `spark.sql.files.openCostInBytes` lowered so that thousands of 250-byte
  song files pack into about one read task per core instead of hundreds;
- shuffle partitions sized for the input, with adaptive execution on to
  coalesce them further; the song keys (a few MB) are under Spark's
  broadcast threshold, so the songplays join is a broadcast hash join;
- one shuffle by the partition columns into one task per core before each
  partitioned write, so each partition directory is written by one task as
  one file and all cores write (left to adaptive execution, a small table is
  coalesced into one task that writes thousands of song partitions alone);
  `coalesce(1)` for the two small unpartitioned tables;
- session time zone UTC, timestamps written as Parquet TIMESTAMP_MICROS.

Record ids: Sparkify Lake numbers every record by its file's key << bits |
its 1-based position in the file (record_ids.py). `songplay_id` is that
id, songs keep their first record by it, users break ties on `ts` by it. Spark's JSON reader keeps no position, so files are read
whole (`wholetext`) and split into lines here: one JSON value per line, as
in the real input (a pretty-printed multi-line song file is not supported).

Usage: spark_etl.py --input DIR --output DIR [--cores N] [--driver-memory 4g] [--songs-layout year-artist|year]
Prints one JSON line with the job's own timings (excluding interpreter start).
"""

import argparse
import json
import os
import shutil
import sys
import time
import urllib.parse

import pyarrow as pa
import pyarrow.parquet as pq

from record_ids import file_key, record_bits
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
)

# The raw input schemas of crates/etl/src/schema.rs.
SONG_SCHEMA = StructType(
    [
        StructField("num_songs", LongType()),
        StructField("artist_id", StringType()),
        StructField("artist_latitude", DoubleType()),
        StructField("artist_longitude", DoubleType()),
        StructField("artist_location", StringType()),
        StructField("artist_name", StringType()),
        StructField("song_id", StringType()),
        StructField("title", StringType()),
        StructField("duration", DoubleType()),
        StructField("year", LongType()),
    ]
)

EVENT_SCHEMA = StructType(
    [
        StructField("artist", StringType()),
        StructField("auth", StringType()),
        StructField("firstName", StringType()),
        StructField("gender", StringType()),
        StructField("itemInSession", LongType()),
        StructField("lastName", StringType()),
        StructField("length", DoubleType()),
        StructField("level", StringType()),
        StructField("location", StringType()),
        StructField("method", StringType()),
        StructField("page", StringType()),
        StructField("registration", DoubleType()),
        StructField("sessionId", LongType()),
        StructField("song", StringType()),
        StructField("status", LongType()),
        StructField("ts", LongType()),
        StructField("userAgent", StringType()),
        StructField("userId", StringType()),
    ]
)

INPUT_GLOB = "*.{json,json.gz}"

# submit --songs-layout: (partition columns, order of rows within a partition)
SONGS_LAYOUTS = {
    "year-artist": (["year", "artist_id"], ["song_id"]),
    "year": (["year"], ["artist_id", "song_id"]),
}


def build_session(cores: int, driver_memory: str, shuffle_partitions: int) -> SparkSession:
    return (
        SparkSession.builder.appName("sparkify-peer")
        .master(f"local[{cores}]")
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.default.parallelism", str(cores))
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.sql.adaptive.coalescePartitions.enabled", "true")
        .config("spark.sql.files.openCostInBytes", str(64 * 1024))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.parquet.compression.codec", "snappy")
        .config("spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


def input_bytes(folder: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def read_records(spark: SparkSession, folder: str, schema: StructType, required: list[str], keys_dir: str):
    """Records of one input kind with their `record_id`, good records only.

    The files' keys are computed here and handed to Spark as a Parquet file
    in `keys_dir` (a plan with one literal per file would not scale to a
    million song files), joined by file name.
    A record is dropped where Sparkify Lake rejects it: a required field
    missing (or of the wrong type, which Spark reads as null).
    """
    files = spark.read.text(
        folder, wholetext=True, recursiveFileLookup=True, pathGlobFilter=INPUT_GLOB
    )
    lines = files.select(
        F.input_file_name().alias("file"),
        F.posexplode(F.filter(F.split("value", "\n"), lambda line: line.rlike(r"\S"))).alias(
            "position", "line"
        ),
    )
    uris = files.inputFiles()
    root = os.path.dirname(os.path.normpath(folder))
    bits = record_bits(folder)
    keys = pa.table(
        {
            "file": uris,
            "key": [file_key(urllib.parse.unquote(urllib.parse.urlparse(u).path), root, bits) for u in uris],
        }
    )
    keys_file = os.path.join(keys_dir, os.path.basename(folder) + "-keys.parquet")
    pq.write_table(keys, keys_file)
    lines = lines.join(F.broadcast(spark.read.parquet(keys_file)), "file")
    record_id = F.shiftleft(F.col("key"), bits) + F.col("position") + 1
    records = lines.select(
        record_id.alias("record_id"), F.from_json("line", schema).alias("r")
    ).select("record_id", "r.*")
    for field in required:
        records = records.filter(F.col(field).isNotNull())
    return records


def song_plays(events):
    return events.filter(F.col("page") == "NextSong").withColumn(
        "start_time", F.timestamp_millis("ts")
    )


def songs_table(songs):
    """One row per song_id: the record with the smallest record id."""
    first = F.min_by(
        F.struct("title", "artist_id", "year", "duration"), F.col("record_id")
    ).alias("s")
    return songs.groupBy("song_id").agg(first).select(
        "song_id",
        "s.title",
        "s.artist_id",
        F.col("s.year").cast("int").alias("year"),
        "s.duration",
    )


def artists_table(songs):
    """One row per artist_id, whole from the artist's song with the smallest song_id."""
    whole = F.min_by(
        F.struct(
            F.col("artist_name").alias("name"),
            F.col("artist_location").alias("location"),
            F.col("artist_latitude").alias("latitude"),
            F.col("artist_longitude").alias("longitude"),
        ),
        F.struct("song_id", "record_id"),
    ).alias("a")
    return songs.groupBy("artist_id").agg(whole).select("artist_id", "a.*")


def users_table(plays):
    """One row per user who played a song, from their latest play by ts (ties: the larger record id)."""
    latest = F.max_by(
        F.struct(
            F.col("firstName").alias("first_name"),
            F.col("lastName").alias("last_name"),
            "gender",
            "level",
        ),
        F.struct("ts", "record_id"),
    ).alias("u")
    return (
        plays.filter(F.col("userId") != "")
        .withColumn("user_id", F.col("userId").try_cast("int"))
        .groupBy("user_id")
        .agg(latest)
        .select("user_id", "u.*")
    )


def time_table(plays):
    """One row per distinct start_time; weekday 1 = Sunday as Spark's dayofweek."""
    return (
        plays.select("start_time")
        .distinct()
        .select(
            "start_time",
            F.hour("start_time").alias("hour"),
            F.dayofmonth("start_time").alias("day"),
            F.weekofyear("start_time").alias("week"),
            F.month("start_time").alias("month"),
            F.year("start_time").alias("year"),
            F.dayofweek("start_time").alias("weekday"),
        )
    )


def songplays_table(plays, songs):
    """Each play, left-joined to one song per (title, artist_name, duration): the smallest song_id."""
    keys = songs.groupBy("title", "artist_name", "duration").agg(
        F.min("song_id").alias("song_id"),
        F.min_by("artist_id", "song_id").alias("artist_id"),
    )
    joined = plays.join(
        keys,
        (plays.song == keys.title)
        & (plays.artist == keys.artist_name)
        & (plays.length == keys.duration),
        "left",
    )
    return joined.select(
        F.col("record_id").alias("songplay_id"),
        "start_time",
        F.when(F.col("userId") != "", F.col("userId").try_cast("int")).alias("user_id"),
        "level",
        "song_id",
        "artist_id",
        F.col("sessionId").alias("session_id"),
        "location",
        F.col("userAgent").alias("user_agent"),
        F.year("start_time").alias("year"),
        F.month("start_time").alias("month"),
    )


def write_partitioned(df, path: str, partition_by: list[str], sort_by: list[str], tasks: int) -> None:
    (
        df.repartition(tasks, *partition_by)
        .sortWithinPartitions(*partition_by, *sort_by)
        .write.mode("overwrite")
        .partitionBy(*partition_by)
        .parquet(path)
    )


def write_single(df, path: str, sort_by: list[str]) -> None:
    df.coalesce(1).sortWithinPartitions(*sort_by).write.mode("overwrite").parquet(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--songs-layout", choices=SONGS_LAYOUTS, default="year-artist")
    args = parser.parse_args()

    # Nothing here runs Python on the executors; should anything, the same interpreter.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    output = os.path.abspath(args.output)
    shutil.rmtree(output, ignore_errors=True)
    started = time.monotonic()
    song_dir = os.path.join(os.path.abspath(args.input), "song_data")
    log_dir = os.path.join(os.path.abspath(args.input), "log_data")
    # About 64 MiB of raw input per shuffle partition, at least two per core;
    # adaptive execution coalesces what turns out smaller.
    size = input_bytes(song_dir) + input_bytes(log_dir)
    shuffle_partitions = max(2 * args.cores, min(2000, size // (64 << 20)))
    spark = build_session(args.cores, args.driver_memory, shuffle_partitions)
    spark.sparkContext.setLogLevel("ERROR")
    session_ready = time.monotonic()

    keys_dir = os.path.join(output, "_keys")
    os.makedirs(keys_dir, exist_ok=True)
    songs = read_records(spark, song_dir, SONG_SCHEMA, ["song_id", "artist_id"], keys_dir).cache()
    events = read_records(spark, log_dir, EVENT_SCHEMA, ["ts", "page"], keys_dir)
    # Sparkify Lake rejects an event whose userId is neither empty nor an int.
    events = events.filter(
        F.col("userId").isNull()
        | (F.col("userId") == "")
        | (F.col("userId").rlike(r"^[+-]?[0-9]+$") & F.col("userId").try_cast("int").isNotNull())
    )
    plays = song_plays(events).cache()

    timings = {}
    for name, write in [
        ("songs", lambda p: write_partitioned(songs_table(songs), p, *SONGS_LAYOUTS[args.songs_layout], args.cores)),
        ("artists", lambda p: write_single(artists_table(songs), p, ["artist_id"])),
        ("users", lambda p: write_single(users_table(plays), p, ["user_id"])),
        ("time", lambda p: write_partitioned(time_table(plays), p, ["year", "month"], ["start_time"], args.cores)),
        ("songplays", lambda p: write_partitioned(songplays_table(plays, songs), p, ["year", "month"], ["start_time", "songplay_id"], args.cores)),
    ]:
        table_started = time.monotonic()
        write(os.path.join(output, name))
        timings[name] = round(time.monotonic() - table_started, 3)
    version = spark.version
    spark.stop()
    finished = time.monotonic()
    print(
        json.dumps(
            {
                "engine": "spark",
                "version": version,
                "cores": args.cores,
                "shuffle_partitions": shuffle_partitions,
                "startup_seconds": round(session_ready - started, 3),
                "job_seconds": round(finished - session_ready, 3),
                "table_seconds": timings,
            }
        )
    )


if __name__ == "__main__":
    main()
