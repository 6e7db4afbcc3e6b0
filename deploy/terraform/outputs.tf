output "scheduler_address" {
  description = "host:port to submit to."
  value       = "${aws_instance.scheduler.public_ip}:${var.scheduler_port}"
}

output "submit_command" {
  description = "Runs the ETL on the fleet, from the admin network."
  value       = "AWS_REGION=${var.region} cargo run --release -p submit -- --scheduler ${aws_instance.scheduler.public_ip}:${var.scheduler_port} --input s3://${var.input_bucket} --output s3://${aws_s3_bucket.output.id}/sparkify"
}

output "artifacts_location" {
  description = "Where to upload the binaries and systemd units before apply."
  value       = local.artifacts
}
