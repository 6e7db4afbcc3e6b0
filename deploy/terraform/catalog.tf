# The lake's Delta tables in the Glue catalog, and an Athena workgroup with
# a result location, so that Athena queries them with no manual step:
#
#   SELECT * FROM sparkify_lake.songplays LIMIT 10   -- workgroup sparkify-lake
#
# A Glue table of type DELTA needs only its location: Athena reads the
# schema and the partition columns from the table's Delta log, so nothing
# here repeats them and a run that changes a schema needs no apply. The
# `path` SerDe parameter is what Spark on EMR or Glue reads the location from.

locals {
  lake_tables = {
    songs     = { folder = "songs", description = "Songs; partitioned by year and artist_id." }
    artists   = { folder = "artists", description = "Artists." }
    users     = { folder = "users", description = "Users, with their latest level." }
    time      = { folder = "time", description = "Timestamps of song plays, broken into units; partitioned by year and month." }
    songplays = { folder = "songplays", description = "Song plays (NextSong events) joined to songs and artists; partitioned by year and month." }
    rejects   = { folder = "_rejects", description = "Input records every run rejected, with run id, file, line and reason." }
  }

  athena_results_prefix = "athena-results"
}

resource "aws_glue_catalog_database" "lake" {
  name        = var.glue_database
  description = "Sparkify Lake: the star schema at ${local.lake}/ as Delta tables."
}

resource "aws_glue_catalog_table" "lake" {
  for_each      = local.lake_tables
  database_name = aws_glue_catalog_database.lake.name
  name          = each.key
  description   = each.value.description
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "table_type"                 = "DELTA"
    "EXTERNAL"                   = "TRUE"
    "spark.sql.sources.provider" = "delta"
  }

  storage_descriptor {
    location = "${local.lake}/${each.value.folder}/"

    ser_de_info {
      parameters = {
        path = "${local.lake}/${each.value.folder}/"
      }
    }
  }
}

resource "aws_athena_workgroup" "lake" {
  name = var.name

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true

    result_configuration {
      output_location = "s3://${aws_s3_bucket.output.id}/${local.athena_results_prefix}/"

      encryption_configuration {
        encryption_option = "SSE_S3"
      }
    }
  }
}
