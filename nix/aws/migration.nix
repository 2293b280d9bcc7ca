# The migration function: the catalog's `lambda = true` job, packaged by the
# flake as a `provided.al2023` zip (handler `bootstrap`) and passed in as the
# Terraform variable `migration_lambda_zip`. CI invokes it after a deploy; it
# applies only pending migrations.
#
# It runs in the private subnets with its own security group (PostgreSQL, and
# HTTPS inside the VPC for the Secrets Manager endpoint) and a role that may
# read only the database's master secret and decrypt only with its key.
{
  config,
  lib,
  catalog,
  logGroup,
  ...
}: let
  h = import ./lib.nix {inherit lib;};
  inherit (h) tf;
  env = config.environment;
  job = catalog.migrationJob;
  fn = "${env.name}-${job.name}";
  letters = map h.zoneLetter env.availabilityZones;
  secretArn = tf "aws_db_instance.main.master_user_secret[0].secret_arn";
in {
  config = lib.mkIf (job != null) {
    resource = {
      aws_lambda_function.migration =
        {
          function_name = fn;
          description = "Applies pending database migrations (${job.crate})";
          role = tf "aws_iam_role.migration.arn";
          runtime = "provided.al2023";
          handler = "bootstrap";
          architectures = ["x86_64"];
          filename = tf "var.migration_lambda_zip";
          source_code_hash = tf "filebase64sha256(var.migration_lambda_zip)";
          memory_size = job.memory;
          timeout = 300;
          # No reserved concurrency: reserving any fails on accounts whose
          # concurrency quota is 10 (the unreserved pool may not drop below
          # 10), and the migrations' advisory lock already serialises runs.
          # No customer-managed key for the environment: it holds no secret
          # (DB_SECRET_ARN is an ARN), and the read-only plan role could not
          # decrypt it, so every pull request's plan would show it changed.
          # No active tracing: the function emits no segments of its own, and
          # its security group has no path to X-Ray.
          tracing_config.mode = "PassThrough";
          logging_config = {
            log_format = "Text";
            log_group = tf "aws_cloudwatch_log_group.migration.name";
          };
          vpc_config = {
            subnet_ids = map (l: tf "aws_subnet.private_${l}.id") letters;
            security_group_ids = [(tf "aws_security_group.migration.id")];
          };
          environment.variables =
            {
              LOG_FORMAT = "json";
              DB_SECRET_ARN = secretArn;
              PGHOST = tf "aws_db_instance.main.address";
              PGPORT = toString config.database.port;
              PGDATABASE = config.database.name;
              # Authenticate the server: the RDS CA bundle ships in the zip.
              PGSSLMODE = "verify-full";
              PGSSLROOTCERT = config.database.caBundle.lambdaPath;
            }
            // job.env;
          depends_on = ["aws_iam_role_policy_attachment.migration_vpc_access" "aws_iam_role_policy.migration"];
        }
        // h.checkovSkips {
          CKV_AWS_116 = "invoked synchronously by CI, which sees and reports the error; a dead-letter queue would hide it";
          CKV_AWS_272 = "the zip is a reproducible Nix build whose hash Terraform pins (source_code_hash); no signing profile";
        };

      aws_cloudwatch_log_group.migration = logGroup "/${env.name}/lambda/${job.name}";

      aws_iam_role.migration = {
        name = "${fn}-function";
        description = "The migration function: network interfaces, its logs, the database secret";
        assume_role_policy = h.assumedBy "lambda.amazonaws.com";
        permissions_boundary = tf "local.permissions_boundary";
      };
      # ENI management in the VPC (AWS-managed, the documented minimum for VPC functions).
      aws_iam_role_policy_attachment.migration_vpc_access = {
        role = tf "aws_iam_role.migration.name";
        policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole";
      };
      aws_iam_role_policy.migration = {
        name = "read-database-secret";
        role = tf "aws_iam_role.migration.id";
        policy = h.policy [
          (h.allow "secretsmanager:GetSecretValue" secretArn)
          (h.allow "kms:Decrypt" (tf "aws_kms_key.database.arn"))
          (h.allow ["logs:CreateLogStream" "logs:PutLogEvents"] "${tf "aws_cloudwatch_log_group.migration.arn"}:*")
        ];
      };

      aws_security_group.migration = {
        name = "${fn}-function";
        description = "Migration function: PostgreSQL and the VPC endpoints only";
        vpc_id = tf "aws_vpc.main.id";
        tags.Name = "${fn}-function";
      };
      aws_vpc_security_group_egress_rule = {
        migration_to_database = {
          security_group_id = tf "aws_security_group.migration.id";
          description = "To PostgreSQL";
          ip_protocol = "tcp";
          from_port = config.database.port;
          to_port = config.database.port;
          referenced_security_group_id = tf "aws_security_group.database.id";
        };
        # Secrets Manager through its interface endpoint; nothing leaves the VPC.
        migration_to_endpoints = {
          security_group_id = tf "aws_security_group.migration.id";
          description = "HTTPS to the VPC endpoints";
          ip_protocol = "tcp";
          from_port = 443;
          to_port = 443;
          referenced_security_group_id = tf "aws_security_group.endpoints.id";
        };
      };
    };

    output.migration_lambda_name.value = tf "aws_lambda_function.migration.function_name";
  };
}
