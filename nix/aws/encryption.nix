# Customer-managed KMS keys, rotated yearly, and the log group shape every
# module uses (encrypted, with the environment's retention).
#
# - `database`: RDS storage, Performance Insights and the RDS-managed master
#   secret; the migration function and the database clients' task roles
#   may decrypt with it (the secret, through Secrets Manager), nothing else.
# - `observability`: CloudWatch log groups and the alarm topic.
#
# Key policies name the account root (so IAM policies decide, as usual) plus
# the AWS services that encrypt on our behalf. They are attached with
# `aws_kms_key_policy`, taking the account from a key's ARN, so that planning
# needs no STS call (and works with the tests' fake credentials).
{
  config,
  lib,
  ...
}: let
  h = import ./lib.nix {inherit lib;};
  inherit (h) tf;
  env = config.environment;

  # Quotes cannot appear inside interpolations embedded in JSON documents,
  # hence a local.
  account = tf "local.account_id";
  rootStatement = {
    Sid = "AccountAdministersTheKeyThroughIam";
    Effect = "Allow";
    Principal.AWS = "arn:aws:iam::${account}:root";
    Action = "kms:*";
    Resource = "*";
  };
in {
  config = {
    locals.account_id = tf "split(\":\", aws_kms_key.observability.arn)[4]";

    _module.args.logGroup = name:
      {
        inherit name;
        retention_in_days = env.logRetentionDays;
        kms_key_id = tf "aws_kms_key.observability.arn";
        # CloudWatch Logs checks at creation that the key policy admits it.
        depends_on = ["aws_kms_key_policy.observability"];
      }
      // h.checkovSkips (lib.optionalAttrs (env.logRetentionDays < 365) {
        CKV_AWS_338 = "${env.name} keeps logs ${toString env.logRetentionDays} days on purpose: it holds no data worth a year";
      });

    resource = {
      aws_kms_key = {
        database = {
          description = "${env.name}: RDS storage, Performance Insights and the master user secret";
          enable_key_rotation = true;
          deletion_window_in_days = 30;
        };
        observability = {
          description = "${env.name}: CloudWatch log groups and the alarm topic";
          enable_key_rotation = true;
          deletion_window_in_days = 30;
        };
      };

      aws_kms_alias = {
        database = {
          name = "alias/${env.name}/database";
          target_key_id = tf "aws_kms_key.database.key_id";
        };
        observability = {
          name = "alias/${env.name}/observability";
          target_key_id = tf "aws_kms_key.observability.key_id";
        };
      };

      aws_kms_key_policy = {
        database = {
          key_id = tf "aws_kms_key.database.id";
          policy = h.policy [rootStatement];
        };
        observability = {
          key_id = tf "aws_kms_key.observability.id";
          policy = h.policy [
            rootStatement
            {
              Sid = "CloudWatchLogsEncryptsThisEnvironmentsLogGroups";
              Effect = "Allow";
              Principal.Service = "logs.${env.region}.amazonaws.com";
              Action = ["kms:Encrypt*" "kms:Decrypt*" "kms:ReEncrypt*" "kms:GenerateDataKey*" "kms:Describe*"];
              Resource = "*";
              Condition.ArnLike."kms:EncryptionContext:aws:logs:arn" = "arn:aws:logs:${env.region}:${account}:log-group:*";
            }
            {
              Sid = "CloudWatchAlarmsPublishToTheEncryptedTopic";
              Effect = "Allow";
              Principal.Service = "cloudwatch.amazonaws.com";
              Action = ["kms:Decrypt" "kms:GenerateDataKey*"];
              Resource = "*";
              Condition.StringEquals."aws:SourceAccount" = account;
            }
          ];
        };
      };
    };
  };
}
