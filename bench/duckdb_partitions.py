"""How DuckDB's hive-partitioned COPY scales with the number of partitions.

The songs table has one (year, artist_id) partition per artist, and the
DuckDB peer (bench/peers/duckdb_etl.py) slows down far faster than the
number of partitions grows. This writes a songs-shaped table of N rows with
about N distinct (year, artist_id) partitions, rows ordered by partition,
the way the peer does, and prints the seconds and files per second of the
COPY alone. Run it under each DuckDB version to compare (README,
"Benchmarks"):

    python bench/duckdb_partitions.py 5000 10000 20000
"""

import argparse
import os
import shutil
import tempfile
import time

import duckdb


def copy_seconds(rows: int, threads: int, folder: str) -> tuple[float, int]:
    """Seconds of one partitioned COPY of `rows` songs, and files written."""
    out = os.path.join(folder, f"songs-{rows}")
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET temp_directory = '{folder}/spill'")
    con.execute(f"SET partitioned_write_max_open_files = {rows + 1}")
    artists = max(rows * 92 // 100, 1)
    con.execute(
        f"""CREATE TABLE songs AS
            SELECT 'SO' || lpad(i::VARCHAR, 16, '0') AS song_id, 'title ' || i AS title,
                   'AR' || lpad((i * 7919 % {artists})::VARCHAR, 16, '0') AS artist_id,
                   (CASE WHEN i % 3 = 0 THEN 0 ELSE 1950 + i % 60 END)::INTEGER AS year,
                   i * 1.5 AS duration
            FROM range({rows}) t(i)"""
    )
    started = time.monotonic()
    con.execute(
        f"""COPY (SELECT * FROM songs ORDER BY year, artist_id, song_id)
            TO '{out}' (FORMAT parquet, PARTITION_BY (year, artist_id))"""
    )
    seconds = time.monotonic() - started
    con.close()
    files = sum(len(names) for _, _, names in os.walk(out))
    shutil.rmtree(out)
    return seconds, files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int, nargs="+", help="songs (about as many partitions)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.work) as folder:
        for rows in args.rows:
            seconds, files = copy_seconds(rows, args.threads, folder)
            print(
                f"duckdb {duckdb.__version__}: {rows} rows, {files} partition files "
                f"in {seconds:.2f} s ({files / seconds:.0f} files/s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
