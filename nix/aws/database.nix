# PostgreSQL 16 on RDS in the private subnets. RDS generates the master
# password and keeps it in Secrets Manager (`manage_master_user_password`), so
# it never passes through Terraform or its state. Storage, Performance
# Insights and the secret are encrypted with the `database` key; the parameter
# group refuses connections without TLS.
#
# The security group admits 5432 only from the catalog's database clients: the
# services with `database = true` and the migration function.
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
  cfg = config.database;
  name = suffix: "${env.name}-${suffix}";
  letters = map h.zoneLetter env.availabilityZones;
  identifier = name "postgres";

  # Security groups of the database's clients: ECS services by their own group;
  # the migration job by the Lambda's group. Other jobs have no runtime on AWS.
  clientGroups =
    lib.mapAttrsToList (client: _: {
      inherit client;
      group = "service_${client}";
    }) (lib.filterAttrs (n: _: catalog.services ? ${n}) catalog.databaseClients)
    ++ lib.optional (catalog.migrationJob != null && catalog.migrationJob.database) {
      client = catalog.migrationJob.name;
      group = "migration";
    };

  logExports = ["postgresql" "upgrade"];
in {
  options.database = {
    name = lib.mkOption {
      type = lib.types.str;
      default = "app";
      description = "The application database (PGDATABASE).";
    };
    port = lib.mkOption {
      type = lib.types.port;
      default = 5432;
      readOnly = true;
      description = "PostgreSQL's port.";
    };
    instanceClass = lib.mkOption {
      type = lib.types.str;
      description = "RDS instance class.";
    };
    allocatedStorageGiB = lib.mkOption {
      type = lib.types.ints.between 20 65536;
      default = 20;
      description = "Initial storage.";
    };
    maxAllocatedStorageGiB = lib.mkOption {
      type = lib.types.ints.between 20 65536;
      default = 100;
      description = "Storage autoscaling ceiling.";
    };
    multiAz = lib.mkOption {
      type = lib.types.bool;
      description = "A synchronous standby in another zone.";
    };
    deletionProtection = lib.mkOption {
      type = lib.types.bool;
      description = "Refuse to delete the instance; also keeps a final snapshot on deletion.";
    };
    caBundle = {
      file = lib.mkOption {
        type = lib.types.path;
        default = ./rds-ca-bundle.pem;
        readOnly = true;
        description = ''
          The RDS certificate authorities (every region's RSA2048/RSA4096/ECC384 G1
          roots), which the clients verify the server against (`verify-full`).
          The images (nix/images.nix) and the Lambda zip (nix/lambda.nix) carry it.
        '';
      };
      imagePath = lib.mkOption {
        type = lib.types.str;
        default = "/etc/ssl/certs/rds-ca-bundle.pem";
        readOnly = true;
        description = "Where the images hold `file` (PGSSLROOTCERT of the tasks).";
      };
      lambdaPath = lib.mkOption {
        type = lib.types.str;
        default = "/var/task/rds-ca-bundle.pem";
        readOnly = true;
        description = "Where the function finds `file`: the zip's root, unpacked in /var/task.";
      };
    };
    backupRetentionDays = lib.mkOption {
      type = lib.types.ints.between 1 35;
      default = 7;
      description = "Automated backup retention.";
    };
  };

  config = {
    resource = {
      aws_db_subnet_group.main = {
        name = identifier;
        description = "Private subnets of ${env.name}";
        subnet_ids = map (l: tf "aws_subnet.private_${l}.id") letters;
      };

      # A prefix, not a name: a family change creates the new group before
      # the old one goes (create_before_destroy), and two cannot share a name.
      aws_db_parameter_group.main = {
        name_prefix = name "postgres16-";
        family = "postgres16";
        description = "TLS only; slow and DDL statements logged";
        parameter = [
          {
            name = "rds.force_ssl";
            value = "1";
          }
          {
            name = "log_statement";
            value = "ddl";
          }
          {
            name = "log_min_duration_statement";
            value = "1000";
          }
          {
            name = "log_connections";
            value = "1";
          }
          {
            name = "log_disconnections";
            value = "1";
          }
        ];
        lifecycle.create_before_destroy = true;
      };

      aws_db_instance.main =
        {
          inherit identifier;
          engine = "postgres";
          engine_version = "16";
          auto_minor_version_upgrade = true;
          instance_class = cfg.instanceClass;
          allocated_storage = cfg.allocatedStorageGiB;
          max_allocated_storage = cfg.maxAllocatedStorageGiB;
          storage_type = "gp3";
          storage_encrypted = true;
          kms_key_id = tf "aws_kms_key.database.arn";

          db_name = cfg.name;
          username = "app";
          manage_master_user_password = true;
          master_user_secret_kms_key_id = tf "aws_kms_key.database.arn";
          iam_database_authentication_enabled = true;

          db_subnet_group_name = tf "aws_db_subnet_group.main.name";
          vpc_security_group_ids = [(tf "aws_security_group.database.id")];
          publicly_accessible = false;
          inherit (cfg) port;
          parameter_group_name = tf "aws_db_parameter_group.main.name";
          ca_cert_identifier = "rds-ca-rsa2048-g1";

          multi_az = cfg.multiAz;
          backup_retention_period = cfg.backupRetentionDays;
          backup_window = "03:00-04:00";
          maintenance_window = "sun:04:30-sun:05:30";
          copy_tags_to_snapshot = true;
          deletion_protection = cfg.deletionProtection;
          skip_final_snapshot = !cfg.deletionProtection;
          final_snapshot_identifier =
            if cfg.deletionProtection
            then "${identifier}-final"
            else null;

          performance_insights_enabled = true;
          performance_insights_kms_key_id = tf "aws_kms_key.database.arn";
          performance_insights_retention_period = 7;
          enabled_cloudwatch_logs_exports = logExports;
          # The log groups exist first, with retention and encryption.
          depends_on = map (e: "aws_cloudwatch_log_group.database_${e}") logExports;
        }
        // h.checkovSkips ({
            CKV_AWS_118 = "no enhanced monitoring: CloudWatch metrics, Performance Insights and the alarms cover it without another IAM role";
          }
          // lib.optionalAttrs (!cfg.multiAz) {
            CKV_AWS_157 = "${env.name} runs a single instance on purpose (cost); production is multi-AZ";
          }
          // lib.optionalAttrs (!cfg.deletionProtection) {
            CKV_AWS_293 = "${env.name} is disposable and must be destroyable without a manual step; production is protected";
          });

      aws_cloudwatch_log_group = lib.listToAttrs (map (e:
        lib.nameValuePair "database_${e}" (logGroup "/aws/rds/instance/${identifier}/${e}"))
      logExports);

      aws_security_group.database = {
        name = name "database";
        description = "PostgreSQL: only from the catalog's database clients";
        vpc_id = tf "aws_vpc.main.id";
        tags.Name = name "database";
      };

      aws_vpc_security_group_ingress_rule = lib.listToAttrs (map (c:
        lib.nameValuePair "database_from_${c.client}" {
          security_group_id = tf "aws_security_group.database.id";
          description = "PostgreSQL from ${c.client}";
          ip_protocol = "tcp";
          from_port = cfg.port;
          to_port = cfg.port;
          referenced_security_group_id = tf "aws_security_group.${c.group}.id";
        })
      clientGroups);
    };

    output = {
      database_endpoint.value = tf "aws_db_instance.main.address";
      database_secret_arn = {
        description = "ARN (not the value) of the RDS-managed master user secret.";
        value = tf "aws_db_instance.main.master_user_secret[0].secret_arn";
      };
    };
  };
}
