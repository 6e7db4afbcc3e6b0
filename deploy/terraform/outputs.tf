output "scheduler_instance_id" {
  description = "The scheduler's instance: the target of Session Manager."
  value       = aws_instance.scheduler.id
}

output "scheduler_private_address" {
  description = "host:port of the scheduler inside the VPC (and from admin_cidr, if set)."
  value       = "${aws_instance.scheduler.private_ip}:${var.scheduler_port}"
}

output "port_forward_command" {
  description = "Forwards localhost:<scheduler_port> to the scheduler through SSM Session Manager; leave it running while you submit."
  value       = "aws ssm start-session --region ${var.region} --target ${aws_instance.scheduler.id} --document-name AWS-StartPortForwardingSession --parameters portNumber=${var.scheduler_port},localPortNumber=${var.scheduler_port}"
}

output "submit_command" {
  description = "Runs the ETL on the fleet through the port forward, with the admin's own AWS credentials (the client lists the input and commits the tables)."
  value       = "AWS_REGION=${var.region} cargo run --release -p submit -- --scheduler localhost:${var.scheduler_port} --input s3://${var.input_bucket} --output ${local.lake} --timeout ${var.run_timeout}"
}

output "lake_location" {
  description = "The tables: <lake>/songs/, …/artists/, …/users/, …/time/, …/songplays/, and …/_rejects/."
  value       = local.lake
}

output "glue_database" {
  description = "Glue database holding the tables, for Athena."
  value       = aws_glue_catalog_database.lake.name
}

output "athena_workgroup" {
  description = "Athena workgroup with a result location; query the tables from it."
  value       = aws_athena_workgroup.lake.name
}

output "artifacts_location" {
  description = "Where to upload the binaries and systemd units before apply."
  value       = local.artifacts
}
