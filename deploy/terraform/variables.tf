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
  description = "Optional: a network routed into the VPC (VPN, Direct Connect, peering) allowed to reach the scheduler's port directly, e.g. 10.8.0.0/16. Unset, the scheduler is reached only through SSM Session Manager."
  type        = string
  default     = null

  validation {
    condition     = var.admin_cidr == null || (can(cidrhost(var.admin_cidr, 0)) && can(cidrnetmask(var.admin_cidr)) && !endswith(coalesce(var.admin_cidr, "/0"), "/0"))
    error_message = "admin_cidr must be an IPv4 CIDR block (address/prefix) narrower than 0.0.0.0/0."
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
  description = "Run executors on spot capacity (cheaper; under pull-staged scheduling Ballista re-runs the tasks of a reclaimed executor on the others)."
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

variable "run_timeout" {
  description = "submit_command's --timeout: a run not published within this stops unpublished (exit code 124) and cancels its jobs."
  type        = string
  default     = "2h"
}

variable "glue_database" {
  description = "Glue catalog database the tables are registered in, for Athena (lowercase letters, digits and underscores)."
  type        = string
  default     = "sparkify_lake"

  validation {
    condition     = can(regex("^[a-z0-9_]{1,255}$", var.glue_database))
    error_message = "glue_database may hold only lowercase letters, digits and underscores (Athena's rule for database names)."
  }
}
