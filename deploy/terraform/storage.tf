# The output and artifacts buckets. The input bucket exists already (the
# public Sparkify bucket, or a copy of it) and is only read.

resource "aws_s3_bucket" "output" {
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles storage cost; the tables can be rebuilt from the input.
  #checkov:skip=CKV_AWS_18:Access logging needs a separate log bucket; CloudTrail data events are the account-level choice.
  #checkov:skip=CKV2_AWS_62:No consumer of bucket notifications in this deployment.
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES-256) encrypts at rest without a KMS key to manage and pay for per request.
  bucket = var.output_bucket
}

resource "aws_s3_bucket" "artifacts" {
  #checkov:skip=CKV_AWS_144:Artifacts are rebuilt from source; replication is not worth its cost.
  #checkov:skip=CKV_AWS_18:Access logging needs a separate log bucket; CloudTrail data events are the account-level choice.
  #checkov:skip=CKV2_AWS_62:No consumer of bucket notifications in this deployment.
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES-256) encrypts at rest without a KMS key to manage and pay for per request.
  bucket = var.artifacts_bucket
}

locals {
  owned_buckets = {
    output    = aws_s3_bucket.output.id
    artifacts = aws_s3_bucket.artifacts.id
  }

  # The lake: submit's --output, the executors' writable prefix, and where
  # the Glue tables point.
  lake_prefix = "sparkify"
  lake        = "s3://${aws_s3_bucket.output.id}/${local.lake_prefix}"
}

resource "aws_s3_bucket_public_access_block" "owned" {
  for_each                = local.owned_buckets
  bucket                  = each.value
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# Plain-HTTP requests are refused, whoever makes them.
data "aws_iam_policy_document" "tls_only" {
  for_each = local.owned_buckets

  statement {
    sid       = "DenyPlainHttp"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = ["arn:aws:s3:::${each.value}", "arn:aws:s3:::${each.value}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "owned" {
  for_each = local.owned_buckets
  bucket   = each.value
  policy   = data.aws_iam_policy_document.tls_only[each.key].json

  # S3 refuses a policy change while the public access block is changing.
  depends_on = [aws_s3_bucket_public_access_block.owned]
}

resource "aws_s3_bucket_server_side_encryption_configuration" "owned" {
  for_each = local.owned_buckets
  bucket   = each.value

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "owned" {
  for_each = local.owned_buckets
  bucket   = each.value

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "owned" {
  for_each = local.owned_buckets
  bucket   = each.value

  rule {
    id     = "clean-up"
    status = "Enabled"

    filter {}

    # A killed writer leaves unfinished multipart uploads behind.
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }

    # Files a run replaced are deleted by the job once past --retain (7
    # days); with versioning on, their old versions expire here.
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
  }

  # Athena's query results (catalog.tf) are kept for a week.
  dynamic "rule" {
    for_each = each.key == "output" ? [local.athena_results_prefix] : []

    content {
      id     = "athena-results"
      status = "Enabled"

      filter {
        prefix = "${rule.value}/"
      }

      expiration {
        days = 7
      }
    }
  }
}
