"""Loads a local input folder into the S3 store: creates the bucket if it is
missing and uploads every file under a prefix, keeping the relative paths.

    load-input.py BUCKET PREFIX FOLDER

The store and the credentials come from the standard AWS variables
(AWS_ENDPOINT_URL among them), as for every Sparkify Lake role. docker-compose
runs it in the sparkify-s3 image, whose moto install brings boto3.
"""

import sys
from pathlib import Path

import boto3


def main(bucket: str, prefix: str, folder: str) -> None:
    s3 = boto3.client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        region = s3.meta.region_name
        if region in (None, "us-east-1"):
            s3.create_bucket(Bucket=bucket)
        else:
            location = {"LocationConstraint": region}
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration=location)
    root = Path(folder)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if not files:
        sys.exit(f"error: no files under {folder}")
    for path in files:
        key = f"{prefix}/{path.relative_to(root).as_posix()}"
        s3.upload_file(str(path), bucket, key)
    print(f"uploaded {len(files)} files from {folder} to s3://{bucket}/{prefix}/")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
