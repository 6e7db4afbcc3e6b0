# One instance profile for the fleet, allowed exactly what the jobs do:
# read the input, read the artifacts, read and write the output.

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "fleet" {
  name               = "${var.name}-fleet"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
}

data "aws_iam_policy_document" "fleet" {
  statement {
    sid       = "ListBuckets"
    actions   = ["s3:ListBucket"]
    resources = ["arn:aws:s3:::${var.input_bucket}", aws_s3_bucket.artifacts.arn, aws_s3_bucket.output.arn]
  }

  statement {
    sid       = "ReadInputAndArtifacts"
    actions   = ["s3:GetObject"]
    resources = ["arn:aws:s3:::${var.input_bucket}/*", "${aws_s3_bucket.artifacts.arn}/*"]
  }

  statement {
    sid = "ReadWriteOutput"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.output.arn}/*"]
  }
}

resource "aws_iam_role_policy" "fleet" {
  name   = "${var.name}-buckets"
  role   = aws_iam_role.fleet.id
  policy = data.aws_iam_policy_document.fleet.json
}

resource "aws_iam_instance_profile" "fleet" {
  name = "${var.name}-fleet"
  role = aws_iam_role.fleet.name
}
