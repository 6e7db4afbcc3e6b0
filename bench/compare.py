"""Do several outputs of the five Sparkify tables hold the same rows?

    compare.py NAME=TABLES_DIR NAME=TABLES_DIR ...

Each TABLES_DIR holds `songs/ artists/ users/ time/ songplays/` as
hive-partitioned Parquet (for Sparkify Lake: `<output>/<run>`, the run
`<output>/_LATEST` names). The first is the reference; every other is
compared with it table by table, as multisets of rows (`EXCEPT ALL` both
ways), after reading every column into one canonical type: partition
columns from the directory names (whichever the layout has), integers as BIGINT, `start_time` as
milliseconds since the epoch (engines write it in ms or µs), doubles and
strings as they are (exactly: every engine parses the same JSON text, so
the same double is expected to the last bit).

Also reported per output and table: rows, Parquet files, bytes, the set of
partition directories (same as the reference or not) and the column types
as DuckDB reads them. Prints one JSON document; exits 1 if any table differs.
"""

import json
import os
import sys

import duckdb

# name -> (types of its possible partition columns, data columns with their canonical SQL)
TABLES = {
    "songs": (
        {"year": "INTEGER", "artist_id": "VARCHAR"},
        ["song_id", "title", "artist_id", "year::BIGINT AS year", "duration::DOUBLE AS duration"],
    ),
    "artists": (
        {},
        [
            "artist_id",
            "name",
            "location",
            "latitude::DOUBLE AS latitude",
            "longitude::DOUBLE AS longitude",
        ],
    ),
    "users": (
        {},
        ["user_id::BIGINT AS user_id", "first_name", "last_name", "gender", "level"],
    ),
    "time": (
        {"year": "INTEGER", "month": "INTEGER"},
        [
            "epoch_ms(start_time) AS start_time",
            "hour::BIGINT AS hour",
            "day::BIGINT AS day",
            "week::BIGINT AS week",
            "month::BIGINT AS month",
            "year::BIGINT AS year",
            "weekday::BIGINT AS weekday",
        ],
    ),
    "songplays": (
        {"year": "INTEGER", "month": "INTEGER"},
        [
            "songplay_id::BIGINT AS songplay_id",
            "epoch_ms(start_time) AS start_time",
            "user_id::BIGINT AS user_id",
            "level",
            "song_id",
            "artist_id",
            "session_id::BIGINT AS session_id",
            "location",
            "user_agent",
            "year::BIGINT AS year",
            "month::BIGINT AS month",
        ],
    ),
}

SAMPLE_ROWS = 5


def parquet_files(table_dir: str) -> list[str]:
    """Visible `*.parquet` files under a table folder (Spark's `.crc` and `_SUCCESS` are not data)."""
    found = []
    for root, dirs, files in os.walk(table_dir):
        dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
        found.extend(
            os.path.join(root, f)
            for f in files
            if f.endswith(".parquet") and not f.startswith(("_", "."))
        )
    return sorted(found)


def load(con, view: str, table: str, table_dir: str) -> dict:
    """Registers `view` as the canonical rows of one table; returns what the files look like."""
    known_partitions, columns = TABLES[table]
    files = parquet_files(table_dir)
    if not files:
        raise FileNotFoundError(f"no Parquet files under {table_dir}")
    # The layout may vary (submit --songs-layout): the keys are read from a path.
    keys = [part.split("=", 1)[0] for part in os.path.relpath(files[0], table_dir).split(os.sep)[:-1]]
    partitions = {key: known_partitions.get(key, "VARCHAR") for key in keys}
    options = (
        f", hive_partitioning = true, hive_types = {partitions!r}"
        if partitions
        else ", hive_partitioning = false"
    )
    source = f"read_parquet($files, union_by_name = true{options})"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {view} AS SELECT {', '.join(columns)} FROM {source}",
        {"files": files},
    )
    types = con.execute(f"DESCRIBE SELECT * FROM {source}", {"files": files}).fetchall()
    directories = sorted({os.path.relpath(os.path.dirname(f), table_dir) for f in files})
    return {
        "rows": con.execute(f"SELECT count(*) FROM {view}").fetchone()[0],
        "files": len(files),
        "bytes": sum(os.path.getsize(f) for f in files),
        "partition_dirs": len(directories) if partitions else 0,
        "types": {name: kind for name, kind, *_ in types},
        "_directories": directories,
    }


def difference(con, left: str, right: str) -> tuple[int, list]:
    count = con.execute(
        f"SELECT count(*) FROM (SELECT * FROM {left} EXCEPT ALL SELECT * FROM {right})"
    ).fetchone()[0]
    sample = con.execute(
        f"SELECT * FROM (SELECT * FROM {left} EXCEPT ALL SELECT * FROM {right}) ORDER BY ALL LIMIT {SAMPLE_ROWS}"
    ).fetchall()
    return count, [[str(v) if v is not None else None for v in row] for row in sample]


def compare(outputs: list[tuple[str, str]]) -> dict:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    reference_name = outputs[0][0]
    result = {"reference": reference_name, "tables": {}, "equal": True}
    for table in TABLES:
        entry = {"outputs": {}, "comparisons": {}}
        for index, (name, root) in enumerate(outputs):
            try:
                entry["outputs"][name] = load(con, f"t{index}", table, os.path.join(root, table))
            except (duckdb.Error, OSError) as error:
                entry["outputs"][name] = {"error": str(error).splitlines()[0]}
        reference = entry["outputs"][reference_name]
        for index, (name, _root) in enumerate(outputs[1:], start=1):
            other = entry["outputs"][name]
            if "error" in reference or "error" in other:
                entry["comparisons"][name] = {"equal": False, "error": "unreadable output"}
                result["equal"] = False
                continue
            missing, missing_sample = difference(con, "t0", f"t{index}")
            extra, extra_sample = difference(con, f"t{index}", "t0")
            equal = missing == 0 and extra == 0
            result["equal"] &= equal
            entry["comparisons"][name] = {
                "equal": equal,
                f"rows_only_in_{reference_name}": missing,
                f"rows_only_in_{name}": extra,
                "sample_only_in_reference": missing_sample,
                "sample_only_in_other": extra_sample,
                "same_partition_dirs": reference["_directories"] == other["_directories"],
            }
        for output in entry["outputs"].values():
            output.pop("_directories", None)
        result["tables"][table] = entry
    return result


def main() -> None:
    outputs = []
    for argument in sys.argv[1:]:
        name, sep, path = argument.partition("=")
        if not sep:
            sys.exit(f"usage: {sys.argv[0]} NAME=TABLES_DIR NAME=TABLES_DIR ...")
        outputs.append((name, path))
    if len(outputs) < 1:
        sys.exit(f"usage: {sys.argv[0]} NAME=TABLES_DIR NAME=TABLES_DIR ...")
    result = compare(outputs)
    json.dump(result, sys.stdout, indent=1)
    print()
    sys.exit(0 if result["equal"] else 1)


if __name__ == "__main__":
    main()
