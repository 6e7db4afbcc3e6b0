variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "sparkify-lake"
}

variable "region" {
  description = "AWS region of the fleet and its buckets."
  type        = string
  default     = "us-west-2"
}

variable "admin_cidr" {
  description = "The only network allowed to reach the scheduler (submit from here), e.g. 203.0.113.7/32."
  type        = string

  validation {
    condition     = can(cidrhost(var.admin_cidr, 0)) && var.admin_cidr != "0.0.0.0/0"
    error_message = "admin_cidr must be a CIDR block narrower than 0.0.0.0/0."
  }
}

variable "vpc_cidr" {
  description = "Address range of the fleet's VPC."
  type        = string
  default     = "10.42.0.0/16"
}

variable "scheduler_instance_type" {
  description = "Instance type of the scheduler (it plans and tracks jobs; it holds no data)."
  type        = string
  default     = "m6i.large"
}

variable "executor_instance_type" {
  description = "Instance type of the executors."
  type        = string
  default     = "m6i.xlarge"
}

variable "executor_count" {
  description = "Executors in the auto-scaling group."
  type        = number
  default     = 2
}

variable "executor_spot" {
  description = "Run executors on spot capacity (cheaper; Ballista re-runs the tasks of a reclaimed executor)."
  type        = bool
  default     = false
}

variable "input_bucket" {
  description = "Existing bucket with the raw input (song_data/, log_data/); the fleet only reads it."
  type        = string
}

variable "output_bucket" {
  description = "Bucket the tables are published to; created here."
  type        = string
}

variable "artifacts_bucket" {
  description = "Bucket holding the binaries and systemd units the instances install; created here."
  type        = string
}

variable "scheduler_port" {
  description = "Port of the scheduler's gRPC and REST API (and of its Flight proxy)."
  type        = number
  default     = 50050
}
