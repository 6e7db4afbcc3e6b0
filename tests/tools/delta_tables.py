"""Reads Sparkify Lake's Delta tables with readers that are not ours.

Usage: delta_tables.py OUTPUT_URL TABLE [TABLE ...]

Prints one JSON object: for each table, its newest version, the files that
version holds (paths relative to the table, as the file system names them),
and its row count as the `deltalake` package (delta-rs) reads it and, for a
local output, as DuckDB's delta extension reads it (`delta_scan`). With
SPARKIFY_DELTA_VERSION=N, version N of each table is read instead.

S3 settings come from the standard AWS_* variables (AWS_ENDPOINT_URL for a
server on loopback).
"""

import json
import os
import pathlib
import sys
import urllib.parse

import deltalake


def storage_options():
    """delta-rs options from the AWS environment, for an S3 output."""
    options = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
        options["AWS_ALLOW_HTTP"] = "true"
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        if os.environ.get(name):
            options[name] = os.environ[name]
    return options


def duckdb_rows(path):
    """Rows of a local Delta table as DuckDB reads it, with the delta
    extension that the PyPI package duckdb-ext-delta ships (no network)."""
    import importlib.util

    import duckdb

    # The package installs the extension file under duckdb_ext/, no module.
    site = pathlib.Path(importlib.util.find_spec("duckdb").origin).parent.parent
    extension = next((site / "duckdb_ext").rglob("delta.duckdb_extension"))
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{extension}'")
    return con.execute("SELECT count(*) FROM delta_scan(?)", [path]).fetchone()[0]


def table_uri(output, table):
    """The table's URI as delta-rs takes it: a path for a local output."""
    uri = output.rstrip("/") + "/" + table
    if uri.startswith("file://"):
        return urllib.parse.unquote(urllib.parse.urlparse(uri).path)
    return uri


def open_table(output, table, version=None):
    """The Delta table `table` of the lake at `output`, as delta-rs reads it."""
    uri = table_uri(output, table)
    local = not uri.startswith("s3://")
    options = None if local else storage_options()
    return deltalake.DeltaTable(uri, version=version, storage_options=options)


def read(output, table, version):
    uri = table_uri(output, table)
    local = not uri.startswith("s3://")
    dt = open_table(output, table, version)
    files = [urllib.parse.unquote(f) for f in dt.file_uris()]
    prefix = uri.rstrip("/") + "/"
    return {
        "version": dt.version(),
        "files": [f[len(prefix):] if f.startswith(prefix) else f for f in files],
        "rows_deltalake": dt.to_pyarrow_table().num_rows,
        "rows_duckdb": duckdb_rows(uri) if local and version is None else None,
    }


def main():
    output, tables = sys.argv[1], sys.argv[2:]
    version = os.environ.get("SPARKIFY_DELTA_VERSION")
    version = int(version) if version else None
    print(json.dumps({table: read(output, table, version) for table in tables}), flush=True)
    # deltalake 1.6's S3 client threads abort the interpreter's normal
    # shutdown ("terminate called without an active exception"); the answer
    # is out, so leave without it.
    os._exit(0)


if __name__ == "__main__":
    main()
