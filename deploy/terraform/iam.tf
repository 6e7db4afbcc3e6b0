# One role per Ballista role, each allowed only what that process uses:
#
#   scheduler  its own binary and unit from the artifacts bucket, and the SSM
#              agent (Session Manager port forwarding). No data: the client
#              plans every job and the scheduler only hands out tasks.
#   executor   its own binary and unit, read the input, read and write the
#              lake prefix of the output bucket.
#
# Every S3 permission holds only through the fleet's S3 gateway endpoint
# (aws:SourceVpce), so credentials taken from an instance are of no use
# outside the VPC. Athena and the admin's submit use their own identities and
# are not affected.

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
}

resource "aws_iam_role" "executor" {
  name               = "${var.name}-executor"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
}

resource "aws_iam_role_policy_attachment" "scheduler_ssm" {
  role       = aws_iam_role.scheduler.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid     = "ReadOwnArtifacts"
    actions = ["s3:GetObject"]
    resources = [
      "${aws_s3_bucket.artifacts.arn}/${local.artifacts_prefix}/bin/scheduler",
      "${aws_s3_bucket.artifacts.arn}/${local.artifacts_prefix}/systemd/sparkify-scheduler.service",
    ]

    condition {
      test     = "StringEquals"
      variable = "aws:SourceVpce"
      values   = [aws_vpc_endpoint.s3.id]
    }
  }
}

data "aws_iam_policy_document" "executor" {
  statement {
    sid     = "ReadOwnArtifacts"
    actions = ["s3:GetObject"]
    resources = [
      "${aws_s3_bucket.artifacts.arn}/${local.artifacts_prefix}/bin/executor",
      "${aws_s3_bucket.artifacts.arn}/${local.artifacts_prefix}/systemd/sparkify-executor.service",
    ]

    condition {
      test     = "StringEquals"
      variable = "aws:SourceVpce"
      values   = [aws_vpc_endpoint.s3.id]
    }
  }

  statement {
    sid       = "ListInputAndOutput"
    actions   = ["s3:ListBucket"]
    resources = ["arn:aws:s3:::${var.input_bucket}", aws_s3_bucket.output.arn]

    condition {
      test     = "StringEquals"
      variable = "aws:SourceVpce"
      values   = [aws_vpc_endpoint.s3.id]
    }
  }

  statement {
    sid       = "ReadInput"
    actions   = ["s3:GetObject"]
    resources = ["arn:aws:s3:::${var.input_bucket}/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:SourceVpce"
      values   = [aws_vpc_endpoint.s3.id]
    }
  }

  statement {
    sid = "ReadWriteLake"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.output.arn}/${local.lake_prefix}/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:SourceVpce"
      values   = [aws_vpc_endpoint.s3.id]
    }
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "${var.name}-scheduler-artifacts"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

resource "aws_iam_role_policy" "executor" {
  name   = "${var.name}-executor-data"
  role   = aws_iam_role.executor.id
  policy = data.aws_iam_policy_document.executor.json
}

resource "aws_iam_instance_profile" "scheduler" {
  name = "${var.name}-scheduler"
  role = aws_iam_role.scheduler.name
}

resource "aws_iam_instance_profile" "executor" {
  name = "${var.name}-executor"
  role = aws_iam_role.executor.name
}
