# One VPC: the scheduler in a public subnet (the admin submits to it), the
# executors in private subnets with no route to the internet. Instances
# reach S3 through a gateway endpoint, which costs nothing and keeps traffic
# inside AWS.

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

resource "aws_internet_gateway" "fleet" {
  vpc_id = aws_vpc.fleet.id
}

resource "aws_subnet" "public" {
  vpc_id            = aws_vpc.fleet.id
  cidr_block        = cidrsubnet(var.vpc_cidr, 8, 0)
  availability_zone = local.zones[0]

  tags = {
    Name = "${var.name}-public"
  }
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

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.fleet.id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.fleet.id
  }
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
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
  route_table_ids   = [aws_route_table.public.id, aws_route_table.private.id]
}

# The scheduler: its API from the admin network and from the executors.
resource "aws_security_group" "scheduler" {
  name        = "${var.name}-scheduler"
  description = "Ballista scheduler: API from the admin CIDR and the executors"
  vpc_id      = aws_vpc.fleet.id

  ingress {
    description = "scheduler API (gRPC, REST, Flight proxy) from the admin network"
    from_port   = var.scheduler_port
    to_port     = var.scheduler_port
    protocol    = "tcp"
    cidr_blocks = [var.admin_cidr]
  }

  egress {
    description = "to the executors and the S3 endpoint, inside the VPC"
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

resource "aws_security_group_rule" "scheduler_from_executors" {
  description              = "executors register, heartbeat and report task status"
  type                     = "ingress"
  from_port                = var.scheduler_port
  to_port                  = var.scheduler_port
  protocol                 = "tcp"
  security_group_id        = aws_security_group.scheduler.id
  source_security_group_id = aws_security_group.executor.id
}

# The executors: Flight (shuffle data) only from each other and the
# scheduler's Flight proxy; task gRPC only from the scheduler.
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

resource "aws_security_group_rule" "tasks_from_scheduler" {
  description              = "the scheduler pushes tasks to executors"
  type                     = "ingress"
  from_port                = local.executor_grpc_port
  to_port                  = local.executor_grpc_port
  protocol                 = "tcp"
  security_group_id        = aws_security_group.executor.id
  source_security_group_id = aws_security_group.scheduler.id
}
