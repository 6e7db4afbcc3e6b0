# One VPC with no internet gateway and no NAT: every instance, the
# scheduler included, sits in a private subnet with no public address.
# Instances reach S3 through a gateway endpoint (free, and the condition the
# roles' data access is tied to, see iam.tf), and administrators reach the
# scheduler through SSM Session Manager port forwarding, carried by three
# interface endpoints in the scheduler's subnet (README: "Reaching the
# scheduler").

data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:Only the first two zones are used; zones AWS adds later sort after them (a, b, c …).
  state = "available"
}

locals {
  zones = slice(data.aws_availability_zones.available.names, 0, 2)
}

resource "aws_vpc" "fleet" {
  #checkov:skip=CKV2_AWS_11:Flow logs cost money per GB; enable them in accounts that require them.
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = {
    Name = var.name
  }
}

# No rules: nothing may use the default security group.
resource "aws_default_security_group" "closed" {
  vpc_id = aws_vpc.fleet.id
}

resource "aws_subnet" "private" {
  count             = length(local.zones)
  vpc_id            = aws_vpc.fleet.id
  cidr_block        = cidrsubnet(var.vpc_cidr, 8, 10 + count.index)
  availability_zone = local.zones[count.index]

  tags = {
    Name = "${var.name}-private-${local.zones[count.index]}"
  }
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.fleet.id
}

resource "aws_route_table_association" "private" {
  count          = length(aws_subnet.private)
  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.fleet.id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.private.id]
}

# What the SSM agent on the scheduler talks to (ec2messages only for agents
# older than 3.3.40). One zone: the scheduler's, the only instance using them.
resource "aws_vpc_endpoint" "ssm" {
  for_each            = toset(["ssm", "ssmmessages", "ec2messages"])
  vpc_id              = aws_vpc.fleet.id
  service_name        = "com.amazonaws.${var.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true
  subnet_ids          = [aws_subnet.private[0].id]
  security_group_ids  = [aws_security_group.endpoints.id]
}

resource "aws_security_group" "endpoints" {
  name        = "${var.name}-endpoints"
  description = "SSM interface endpoints: HTTPS from inside the VPC"
  vpc_id      = aws_vpc.fleet.id

  ingress {
    description = "HTTPS from the fleet"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }
}

# The scheduler: its API from the executors (and admin_cidr, if set).
# Session Manager's port forwarding arrives on the instance's loopback, so
# it needs no rule.
resource "aws_security_group" "scheduler" {
  name        = "${var.name}-scheduler"
  description = "Ballista scheduler: API from the executors only"
  vpc_id      = aws_vpc.fleet.id

  egress {
    description = "to the executors and the SSM endpoints, inside the VPC"
    from_port   = 0
    to_port     = 65535
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }

  egress {
    description     = "to S3 through the gateway endpoint (its binary, at boot)"
    from_port       = 443
    to_port         = 443
    protocol        = "tcp"
    prefix_list_ids = [aws_vpc_endpoint.s3.prefix_list_id]
  }
}

resource "aws_security_group_rule" "scheduler_from_executors" {
  description              = "executors register and poll for tasks, which is also their heartbeat"
  type                     = "ingress"
  from_port                = var.scheduler_port
  to_port                  = var.scheduler_port
  protocol                 = "tcp"
  security_group_id        = aws_security_group.scheduler.id
  source_security_group_id = aws_security_group.executor.id
}

resource "aws_security_group_rule" "scheduler_from_admins" {
  count             = var.admin_cidr == null ? 0 : 1
  description       = "scheduler API (gRPC, REST, Flight proxy) from a routed admin network"
  type              = "ingress"
  from_port         = var.scheduler_port
  to_port           = var.scheduler_port
  protocol          = "tcp"
  security_group_id = aws_security_group.scheduler.id
  cidr_blocks       = [var.admin_cidr]
}

# The executors: Flight (shuffle data) only from each other and the
# scheduler's Flight proxy. Under pull-staged scheduling the executors call
# the scheduler, never the reverse, so their task gRPC port is not opened.
resource "aws_security_group" "executor" {
  name        = "${var.name}-executor"
  description = "Ballista executors: reachable only inside the fleet"
  vpc_id      = aws_vpc.fleet.id

  egress {
    description = "to the scheduler and other executors, inside the VPC"
    from_port   = 0
    to_port     = 65535
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }

  egress {
    description     = "to S3 through the gateway endpoint"
    from_port       = 443
    to_port         = 443
    protocol        = "tcp"
    prefix_list_ids = [aws_vpc_endpoint.s3.prefix_list_id]
  }
}

resource "aws_security_group_rule" "flight_between_executors" {
  description              = "shuffle reads between executors"
  type                     = "ingress"
  from_port                = local.executor_flight_port
  to_port                  = local.executor_flight_port
  protocol                 = "tcp"
  security_group_id        = aws_security_group.executor.id
  source_security_group_id = aws_security_group.executor.id
}

resource "aws_security_group_rule" "flight_from_scheduler" {
  description              = "the scheduler's Flight proxy fetches job results for the client"
  type                     = "ingress"
  from_port                = local.executor_flight_port
  to_port                  = local.executor_flight_port
  protocol                 = "tcp"
  security_group_id        = aws_security_group.executor.id
  source_security_group_id = aws_security_group.scheduler.id
}
