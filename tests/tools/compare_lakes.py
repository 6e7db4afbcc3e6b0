"""Compares the five tables of two Sparkify lakes, read with delta-rs (the
`deltalake` package), not with our code.

Usage: compare_lakes.py LAKE_URL OTHER_LAKE_URL

Prints one JSON object: for each table, its rows in each lake, whether the
two hold the same rows (every column, as a multiset, in any order), the
first row only one of them holds when they differ, and for songplays how
many songplay_ids repeat in the first lake. S3 settings come from the
standard AWS_* variables, as in delta_tables.py.
"""

import json
import os
import sys
from collections import Counter

import pyarrow.compute as pc

from delta_tables import open_table

TABLES = ["songs", "artists", "users", "time", "songplays"]


def rows(url, table):
    """The table's column names, its rows as a multiset of tuples (every
    column, by name), and the table."""
    data = open_table(url, table).to_pyarrow_table()
    names = sorted(data.column_names)
    data = data.select(names)
    return names, Counter(tuple(row.values()) for row in data.to_pylist()), data


def compare(left_url, right_url, table):
    left_names, left, data = rows(left_url, table)
    right_names, right, _ = rows(right_url, table)
    report = {
        "rows": left.total(),
        "other_rows": right.total(),
        "columns": left_names,
        "same_columns": left_names == right_names,
        "equal": left_names == right_names and left == right,
    }
    if not report["equal"]:
        report["only_in_first"] = repr(list(left - right)[:1])
        report["only_in_other"] = repr(list(right - left)[:1])
    if table == "songplays":
        ids = data.column("songplay_id")
        report["repeated_ids"] = len(ids) - pc.count_distinct(ids).as_py()
    return report


def main():
    left, right = sys.argv[1], sys.argv[2]
    print(json.dumps({t: compare(left, right, t) for t in TABLES}), flush=True)
    # As in delta_tables.py: delta-rs's S3 threads abort a normal shutdown.
    os._exit(0)


if __name__ == "__main__":
    main()
