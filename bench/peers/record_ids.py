"""Sparkify Lake's record ids, for the peers to number records the same way
(crates/etl/src/extract/listing.rs).

A record's id is its file's key << bits | its 1-based position in the file,
with 23 position bits for event logs and 7 for song files (one song each).
A file's key is the top 63 - bits bits of the XXH64 hash (seed 0) of its
path under the input root (`log_data/2018/11/2018-11-01-events.json`): it
depends on the path alone. `songplay_id` is the id; songs keep the record
with the smallest id, users break ties on `ts` by the largest.
"""

import os

import xxhash

# Position bits of a record id, by the input folder a file is under.
RECORD_BITS = {"song_data": 7, "log_data": 23}


def record_bits(folder: str) -> int:
    """Position bits of the records of the input folder `folder`."""
    return RECORD_BITS[os.path.basename(os.path.normpath(folder))]


def file_key(path: str, root: str, bits: int) -> int:
    """The key of the file at `path` under the input root `root`."""
    relative = os.path.relpath(path, root).replace(os.sep, "/")
    return xxhash.xxh64_intdigest(relative.encode(), seed=0) >> (bits + 1)
