# One scheduler instance and an auto-scaling group of executors, all on
# Amazon Linux 2023 in private subnets. User data installs our binaries and
# systemd units from the artifacts bucket and starts them; credentials come
# from each role's instance profile (instance metadata, IMDSv2 only), never
# from files.
#
# Scheduling is pull-staged on both sides: executors poll the scheduler for
# tasks, and a poll is also their heartbeat (every 5 s at most), so a
# reclaimed spot executor is declared lost after executor_lost_seconds and
# its tasks, and the shuffle output other stages needed from it, are rerun
# on the others. Ballista's default, push-staged, stalls instead
# (docs/guide.md, "When things fail"). docker-compose.yml runs the same policy.

locals {
  executor_flight_port  = 50051
  scheduling_policy     = "pull-staged"
  executor_lost_seconds = 60
  artifacts_prefix      = "sparkify-lake"
  artifacts             = "s3://${aws_s3_bucket.artifacts.id}/${local.artifacts_prefix}"
}

locals {
  # Plans naming any other location are refused by the scheduler and by
  # every executor (docs/operations.md, "Who may submit what").
  allowed_locations = "s3://${var.input_bucket},${local.lake}"

  # Both roles log one JSON object per line, for CloudWatch Logs Insights.
  common_flags = "--allowed-locations ${local.allowed_locations} --log-format json"
}

data "aws_ssm_parameter" "al2023" {
  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

resource "aws_launch_template" "scheduler" {
  name_prefix            = "${var.name}-scheduler-"
  image_id               = data.aws_ssm_parameter.al2023.value
  instance_type          = var.scheduler_instance_type
  update_default_version = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.scheduler.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size = 20
      volume_type = "gp3"
      encrypted   = true
    }
  }

  # The first private subnet: the one the SSM endpoints are in.
  network_interfaces {
    associate_public_ip_address = false
    security_groups             = [aws_security_group.scheduler.id]
    subnet_id                   = aws_subnet.private[0].id
  }

  user_data = base64encode(templatefile("${path.module}/user_data.sh.tftpl", {
    role      = "scheduler"
    artifacts = local.artifacts
    region    = var.region
    flags     = "--bind-host 0.0.0.0 --bind-port ${var.scheduler_port} --external-host $${PRIVATE_IP} --enable-embedded-flight-proxy --scheduler-policy ${local.scheduling_policy} --executor-timeout-seconds ${local.executor_lost_seconds} --event-log-dir /var/lib/sparkify/events ${local.common_flags}"
  }))
}

resource "aws_instance" "scheduler" {
  #checkov:skip=CKV2_AWS_41:The instance profile is attached through the launch template.
  #checkov:skip=CKV_AWS_126:Detailed monitoring costs extra; basic CloudWatch metrics suffice for one scheduler.
  #checkov:skip=CKV_AWS_135:Current instance types are EBS-optimised by default.
  #checkov:skip=CKV_AWS_8:The launch template encrypts the root volume.
  #checkov:skip=CKV_AWS_79:The launch template requires IMDSv2.
  launch_template {
    id      = aws_launch_template.scheduler.id
    version = aws_launch_template.scheduler.latest_version
  }

  tags = {
    Name = "${var.name}-scheduler"
  }
}

resource "aws_launch_template" "executor" {
  name_prefix            = "${var.name}-executor-"
  image_id               = data.aws_ssm_parameter.al2023.value
  instance_type          = var.executor_instance_type
  update_default_version = true
  vpc_security_group_ids = [aws_security_group.executor.id]

  iam_instance_profile {
    arn = aws_iam_instance_profile.executor.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size = 50
      volume_type = "gp3"
      encrypted   = true
    }
  }

  user_data = base64encode(templatefile("${path.module}/user_data.sh.tftpl", {
    role      = "executor"
    artifacts = local.artifacts
    region    = var.region
    flags     = "--bind-host 0.0.0.0 --external-host $${PRIVATE_IP} --bind-port ${local.executor_flight_port} --task-scheduling-policy ${local.scheduling_policy} --scheduler-host ${aws_instance.scheduler.private_ip} --scheduler-port ${var.scheduler_port} --scheduler-connect-timeout-seconds 300 --work-dir /var/lib/sparkify ${local.common_flags}"
  }))
}

resource "aws_autoscaling_group" "executors" {
  name                = "${var.name}-executors"
  min_size            = var.executor_count
  max_size            = var.executor_count
  desired_capacity    = var.executor_count
  vpc_zone_identifier = aws_subnet.private[*].id

  mixed_instances_policy {
    instances_distribution {
      on_demand_percentage_above_base_capacity = var.executor_spot ? 0 : 100
      spot_allocation_strategy                 = "price-capacity-optimized"
    }

    launch_template {
      launch_template_specification {
        launch_template_id = aws_launch_template.executor.id
        version            = aws_launch_template.executor.latest_version
      }
    }
  }

  tag {
    key                 = "Name"
    value               = "${var.name}-executor"
    propagate_at_launch = true
  }
}
