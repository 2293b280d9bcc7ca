# Alarms to an encrypted SNS topic with an e-mail subscription (`alert_email`),
# and one CloudWatch dashboard: the load balancer, each catalog service, the
# database and the migration function.
{
  config,
  lib,
  catalog,
  ...
}: let
  h = import ./lib.nix {inherit lib;};
  inherit (h) tf;
  env = config.environment;
  cfg = config.monitoring;
  name = suffix: "${env.name}-${suffix}";
  topic = tf "aws_sns_topic.alerts.arn";
  alb = tf "aws_lb.main.arn_suffix";
  hasMigration = catalog.migrationJob != null;

  alarm = {
    description,
    namespace,
    metric,
    dimensions,
    statistic ? "Average",
    threshold,
    comparison ? "GreaterThanThreshold",
    periods ? 3,
  }: {
    alarm_name = name description;
    alarm_description = "${env.name}: ${description}";
    inherit namespace dimensions statistic threshold;
    metric_name = metric;
    comparison_operator = comparison;
    period = 60;
    evaluation_periods = periods;
    treat_missing_data = "notBreaching";
    alarm_actions = [topic];
    ok_actions = [topic];
  };

  serviceAlarms = s: {
    "${s.name}_unhealthy_targets" = alarm {
      description = "${s.name} has unhealthy targets";
      namespace = "AWS/ApplicationELB";
      metric = "UnHealthyHostCount";
      dimensions = {
        LoadBalancer = alb;
        TargetGroup = tf "aws_lb_target_group.${s.name}.arn_suffix";
      };
      statistic = "Maximum";
      threshold = 0;
    };
    "${s.name}_cpu" = alarm {
      description = "${s.name} CPU above ${toString cfg.cpuAlarmPercent}%";
      namespace = "AWS/ECS";
      metric = "CPUUtilization";
      dimensions = {
        ClusterName = tf "aws_ecs_cluster.main.name";
        ServiceName = tf "aws_ecs_service.${s.name}.name";
      };
      threshold = cfg.cpuAlarmPercent;
      periods = 5;
    };
    "${s.name}_memory" = alarm {
      description = "${s.name} memory above ${toString cfg.memoryAlarmPercent}%";
      namespace = "AWS/ECS";
      metric = "MemoryUtilization";
      dimensions = {
        ClusterName = tf "aws_ecs_cluster.main.name";
        ServiceName = tf "aws_ecs_service.${s.name}.name";
      };
      threshold = cfg.memoryAlarmPercent;
      periods = 5;
    };
  };

  database.DBInstanceIdentifier = tf "aws_db_instance.main.identifier";

  widget = title: metrics: {
    type = "metric";
    width = 12;
    height = 6;
    properties = {
      inherit title metrics;
      inherit (env) region;
      view = "timeSeries";
      stat = "Average";
      period = 60;
    };
  };
in {
  options.monitoring = {
    cpuAlarmPercent = lib.mkOption {
      type = lib.types.ints.between 1 100;
      default = 85;
      description = "ECS service and RDS CPU alarm threshold.";
    };
    memoryAlarmPercent = lib.mkOption {
      type = lib.types.ints.between 1 100;
      default = 85;
      description = "ECS service memory alarm threshold.";
    };
    http5xxPerMinute = lib.mkOption {
      type = lib.types.ints.positive;
      default = 5;
      description = "5xx responses per minute (load balancer or targets) that raise an alarm.";
    };
    databaseConnections = lib.mkOption {
      type = lib.types.ints.positive;
      default = 80;
      description = "Open database connections that raise an alarm.";
    };
    freeStorageBytes = lib.mkOption {
      type = lib.types.ints.positive;
      default = 2 * 1024 * 1024 * 1024;
      description = "Free database storage below which an alarm is raised.";
    };
  };

  config = {
    resource = {
      aws_sns_topic.alerts = {
        name = name "alerts";
        kms_master_key_id = tf "aws_kms_key.observability.arn";
      };
      aws_sns_topic_subscription.alert_email = {
        topic_arn = topic;
        protocol = "email";
        endpoint = tf "var.alert_email";
      };

      aws_cloudwatch_metric_alarm =
        {
          alb_5xx = alarm {
            description = "load balancer 5xx responses";
            namespace = "AWS/ApplicationELB";
            metric = "HTTPCode_ELB_5XX_Count";
            dimensions.LoadBalancer = alb;
            statistic = "Sum";
            threshold = cfg.http5xxPerMinute;
          };
          alb_target_5xx = alarm {
            description = "service 5xx responses";
            namespace = "AWS/ApplicationELB";
            metric = "HTTPCode_Target_5XX_Count";
            dimensions.LoadBalancer = alb;
            statistic = "Sum";
            threshold = cfg.http5xxPerMinute;
          };
          database_cpu = alarm {
            description = "database CPU above ${toString cfg.cpuAlarmPercent}%";
            namespace = "AWS/RDS";
            metric = "CPUUtilization";
            dimensions = database;
            threshold = cfg.cpuAlarmPercent;
            periods = 5;
          };
          database_free_storage = alarm {
            description = "database free storage low";
            namespace = "AWS/RDS";
            metric = "FreeStorageSpace";
            dimensions = database;
            statistic = "Minimum";
            threshold = cfg.freeStorageBytes;
            comparison = "LessThanThreshold";
          };
          database_connections = alarm {
            description = "database connections above ${toString cfg.databaseConnections}";
            namespace = "AWS/RDS";
            metric = "DatabaseConnections";
            dimensions = database;
            statistic = "Maximum";
            threshold = cfg.databaseConnections;
          };
        }
        // lib.optionalAttrs hasMigration {
          migration_errors = alarm {
            description = "migration function errors";
            namespace = "AWS/Lambda";
            metric = "Errors";
            dimensions.FunctionName = tf "aws_lambda_function.migration.function_name";
            statistic = "Sum";
            threshold = 0;
            periods = 1;
          };
        }
        // lib.foldl' (a: b: a // b) {} (map serviceAlarms (lib.attrValues catalog.services));

      aws_cloudwatch_dashboard.main = {
        dashboard_name = env.name;
        dashboard_body = builtins.toJSON {
          widgets =
            [
              (widget "Load balancer: requests and 5xx" [
                ["AWS/ApplicationELB" "RequestCount" "LoadBalancer" alb {stat = "Sum";}]
                ["AWS/ApplicationELB" "HTTPCode_ELB_5XX_Count" "LoadBalancer" alb {stat = "Sum";}]
                ["AWS/ApplicationELB" "HTTPCode_Target_5XX_Count" "LoadBalancer" alb {stat = "Sum";}]
              ])
              (widget "Load balancer: response time (p95)" [
                ["AWS/ApplicationELB" "TargetResponseTime" "LoadBalancer" alb {stat = "p95";}]
              ])
              (widget "Services: CPU and memory" (lib.concatMap (s: [
                ["AWS/ECS" "CPUUtilization" "ClusterName" (tf "aws_ecs_cluster.main.name") "ServiceName" s.name]
                ["AWS/ECS" "MemoryUtilization" "ClusterName" (tf "aws_ecs_cluster.main.name") "ServiceName" s.name]
              ]) (lib.attrValues catalog.services)))
              (widget "Database" [
                ["AWS/RDS" "CPUUtilization" "DBInstanceIdentifier" database.DBInstanceIdentifier]
                ["AWS/RDS" "DatabaseConnections" "DBInstanceIdentifier" database.DBInstanceIdentifier]
                ["AWS/RDS" "FreeStorageSpace" "DBInstanceIdentifier" database.DBInstanceIdentifier {yAxis = "right";}]
              ])
            ]
            ++ lib.optional hasMigration (widget "Migration function" [
              ["AWS/Lambda" "Invocations" "FunctionName" (tf "aws_lambda_function.migration.function_name") {stat = "Sum";}]
              ["AWS/Lambda" "Errors" "FunctionName" (tf "aws_lambda_function.migration.function_name") {stat = "Sum";}]
              ["AWS/Lambda" "Duration" "FunctionName" (tf "aws_lambda_function.migration.function_name") {stat = "Maximum";}]
            ]);
        };
      };
    };

    output.alerts_topic_arn.value = topic;
  };
}
