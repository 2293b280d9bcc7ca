# Images and containers: an ECR repository per catalog workload, an ECS
# cluster with Container Insights, and per catalog service a Fargate task
# definition, a service behind its target group (circuit breaker with
# rollback, target-tracking autoscaling), a security group and an execution
# role. Services find each other through ECS Service Connect: an upstream
# `api` is `API_URL=http://api:3000` inside the cluster.
#
# A service with `database = true` reads the RDS-managed master secret itself
# (`DB_SECRET_ARN`, with its task role) and re-reads it when RDS rotates it:
# ECS `secrets` would be resolved once at task start and go stale after the
# first rotation (README, "AWS": database credentials).
#
# Jobs other than the migration Lambda are not run on ECS (yet): they get an
# ECR repository, nothing that runs them.
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
  cfg = config.containers;
  name = suffix: "${env.name}-${suffix}";
  letters = map h.zoneLetter env.availabilityZones;
  db = config.database;

  secretArn = tf "aws_db_instance.main.master_user_secret[0].secret_arn";
  databaseServices = lib.filterAttrs (_: s: s.database) catalog.services;
  # Every catalog service that lists `name` among its upstreams.
  callersOf = name: lib.filter (s: lib.elem name s.upstreams) (lib.attrValues catalog.services);

  environmentOf = s:
    {
      PORT = toString s.port;
      METRICS_PORT = toString s.metrics_port;
      LOG_FORMAT = "json";
    }
    // s.env
    // lib.listToAttrs (map (u: lib.nameValuePair (catalog.urlVariable u) "http://${u}:${toString catalog.services.${u}.port}") s.upstreams)
    // lib.optionalAttrs s.database {
      PGHOST = tf "aws_db_instance.main.address";
      PGPORT = toString db.port;
      PGDATABASE = db.name;
      # Authenticate the server: the RDS CA bundle ships in the images.
      PGSSLMODE = "verify-full";
      PGSSLROOTCERT = db.caBundle.imagePath;
      # User name and password: read from the secret by the service, not by ECS.
      DB_SECRET_ARN = secretArn;
      AWS_REGION = env.region;
    };

  containerDefinition = s: {
    inherit (s) name;
    image = "${tf "aws_ecr_repository.${s.name}.repository_url"}:${tf "var.image_tags.${s.name}"}";
    essential = true;
    # Nobody: the images need no privileges, and the root filesystem is read-only.
    user = "65534:65534";
    readonlyRootFilesystem = true;
    portMappings = [
      {
        inherit (s) name; # the Service Connect port name
        containerPort = s.port;
        protocol = "tcp";
        appProtocol = "http";
      }
    ];
    environment = lib.mapAttrsToList (n: value: {
      inherit value;
      name = n;
    }) (environmentOf s);
    logConfiguration = {
      logDriver = "awslogs";
      options = {
        awslogs-group = tf "aws_cloudwatch_log_group.service_${s.name}.name";
        awslogs-region = env.region;
        awslogs-stream-prefix = s.name;
      };
    };
  };

  perService = f: lib.mapAttrs' (_: f) catalog.services;
in {
  options.containers = {
    keepImagesOnDestroy = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Keep the ECR repositories' images: a destroy fails while a repository holds
        any. False (`force_delete`) for a disposable environment, so it can be
        destroyed without a manual step.
      '';
    };
    autoscale = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = "Scale services within the catalog's [min, max]; false pins them at `desired`.";
    };
    cpuTargetPercent = lib.mkOption {
      type = lib.types.ints.between 10 90;
      default = 60;
      description = "Average CPU utilisation the autoscaling policy keeps each service at.";
    };
  };

  config = {
    resource = {
      aws_ecr_repository =
        lib.mapAttrs (_: w: {
          name = "${env.name}/${w.name}";
          # A tag names exactly one build (docs/CONTRACTS.md), so it never moves.
          image_tag_mutability = "IMMUTABLE";
          image_scanning_configuration.scan_on_push = true;
          encryption_configuration.encryption_type = "KMS";
          # Deleting a repository that holds images fails unless forced: a
          # destroyable environment drops its images with it.
          force_delete = !cfg.keepImagesOnDestroy;
        })
        catalog.workloads;

      aws_ecr_lifecycle_policy =
        lib.mapAttrs (_: w: {
          repository = tf "aws_ecr_repository.${w.name}.name";
          policy = builtins.toJSON {
            rules = [
              {
                rulePriority = 1;
                description = "Drop untagged layers after a week";
                selection = {
                  tagStatus = "untagged";
                  countType = "sinceImagePushed";
                  countUnit = "days";
                  countNumber = 7;
                };
                action.type = "expire";
              }
              {
                rulePriority = 2;
                description = "Keep the 50 newest images (rollback range)";
                selection = {
                  tagStatus = "any";
                  countType = "imageCountMoreThan";
                  countNumber = 50;
                };
                action.type = "expire";
              }
            ];
          };
        })
        catalog.workloads;

      aws_ecs_cluster.main = {
        inherit (env) name;
        setting = [
          {
            name = "containerInsights";
            value = "enabled";
          }
        ];
        service_connect_defaults.namespace = tf "aws_service_discovery_http_namespace.main.arn";
      };

      # Service Connect's namespace: the names services call each other by.
      aws_service_discovery_http_namespace.main = {
        name = "${env.name}.internal";
        description = "Service Connect names of ${env.name}";
      };

      aws_cloudwatch_log_group = perService (s: lib.nameValuePair "service_${s.name}" (logGroup "/${env.name}/ecs/${s.name}"));

      aws_iam_role =
        perService (s:
          lib.nameValuePair "execution_${s.name}" {
            name = name "${s.name}-execution";
            description = "ECS pulls ${s.name}'s image and writes its logs";
            assume_role_policy = h.assumedBy "ecs-tasks.amazonaws.com";
            permissions_boundary = tf "local.permissions_boundary";
          })
        // lib.mapAttrs' (_: s:
          lib.nameValuePair "task_${s.name}" {
            name = name "${s.name}-task";
            description = "${s.name} at runtime: reads the database secret as it rotates";
            assume_role_policy = h.assumedBy "ecs-tasks.amazonaws.com";
            permissions_boundary = tf "local.permissions_boundary";
          })
        databaseServices;

      aws_iam_role_policy =
        perService (s:
          lib.nameValuePair "execution_${s.name}" {
            name = "pull-and-log";
            role = tf "aws_iam_role.execution_${s.name}.id";
            policy = h.policy [
              # Authorised on `*` only by AWS; the pull itself is scoped below.
              (h.allow "ecr:GetAuthorizationToken" "*")
              (h.allow ["ecr:BatchCheckLayerAvailability" "ecr:BatchGetImage" "ecr:GetDownloadUrlForLayer"]
                (tf "aws_ecr_repository.${s.name}.arn"))
              (h.allow ["logs:CreateLogStream" "logs:PutLogEvents"]
                "${tf "aws_cloudwatch_log_group.service_${s.name}.arn"}:*")
            ];
          })
        // lib.mapAttrs' (_: s:
          lib.nameValuePair "task_${s.name}" {
            name = "read-database-secret";
            role = tf "aws_iam_role.task_${s.name}.id";
            policy = h.policy [
              (h.allow "secretsmanager:GetSecretValue" secretArn)
              # The secret is encrypted with the database key: decrypt only for Secrets Manager.
              ((h.allow "kms:Decrypt" (tf "aws_kms_key.database.arn"))
                // {Condition.StringEquals."kms:ViaService" = "secretsmanager.${env.region}.amazonaws.com";})
            ];
          })
        databaseServices;

      aws_ecs_task_definition = perService (s:
        lib.nameValuePair s.name (
          {
            family = name s.name;
            requires_compatibilities = ["FARGATE"];
            network_mode = "awsvpc";
            cpu = toString s.cpu;
            memory = toString s.memory;
            runtime_platform = {
              operating_system_family = "LINUX";
              cpu_architecture = "X86_64";
            };
            execution_role_arn = tf "aws_iam_role.execution_${s.name}.arn";
            container_definitions = builtins.toJSON [(containerDefinition s)];
          }
          // lib.optionalAttrs s.database {task_role_arn = tf "aws_iam_role.task_${s.name}.arn";}
        ));

      aws_security_group = perService (s:
        lib.nameValuePair "service_${s.name}" {
          name = name s.name;
          description = "${s.name} tasks";
          vpc_id = tf "aws_vpc.main.id";
          tags.Name = name s.name;
        });

      aws_vpc_security_group_ingress_rule = lib.foldl' (a: b: a // b) {} (lib.mapAttrsToList (_: s:
        {
          "${s.name}_from_alb" = {
            security_group_id = tf "aws_security_group.service_${s.name}.id";
            description = "From the load balancer";
            ip_protocol = "tcp";
            from_port = s.port;
            to_port = s.port;
            referenced_security_group_id = tf "aws_security_group.alb.id";
          };
        }
        // lib.listToAttrs (map (caller:
          lib.nameValuePair "${s.name}_from_${caller.name}" {
            security_group_id = tf "aws_security_group.service_${s.name}.id";
            description = "From ${caller.name}, an upstream caller";
            ip_protocol = "tcp";
            from_port = s.port;
            to_port = s.port;
            referenced_security_group_id = tf "aws_security_group.service_${caller.name}.id";
          }) (callersOf s.name)))
      catalog.services);

      aws_vpc_security_group_egress_rule = lib.foldl' (a: b: a // b) {} (lib.mapAttrsToList (_: s:
        {
          # AWS APIs (through the endpoints, or the NAT for Service Connect's
          # control plane and anything else the services call).
          "${s.name}_https" = {
            security_group_id = tf "aws_security_group.service_${s.name}.id";
            description = "HTTPS to AWS APIs and the internet";
            ip_protocol = "tcp";
            from_port = 443;
            to_port = 443;
            cidr_ipv4 = "0.0.0.0/0";
          };
        }
        // lib.listToAttrs (map (u:
          lib.nameValuePair "${s.name}_to_${u}" {
            security_group_id = tf "aws_security_group.service_${s.name}.id";
            description = "To ${u}, an upstream";
            ip_protocol = "tcp";
            from_port = catalog.services.${u}.port;
            to_port = catalog.services.${u}.port;
            referenced_security_group_id = tf "aws_security_group.service_${u}.id";
          })
        s.upstreams)
        // lib.optionalAttrs s.database {
          "${s.name}_to_database" = {
            security_group_id = tf "aws_security_group.service_${s.name}.id";
            description = "To PostgreSQL";
            ip_protocol = "tcp";
            from_port = db.port;
            to_port = db.port;
            referenced_security_group_id = tf "aws_security_group.database.id";
          };
        })
      catalog.services);

      aws_ecs_service = perService (s:
        lib.nameValuePair s.name {
          inherit (s) name;
          cluster = tf "aws_ecs_cluster.main.id";
          task_definition = tf "aws_ecs_task_definition.${s.name}.arn";
          launch_type = "FARGATE";
          platform_version = "LATEST";
          desired_count = s.instances.desired;
          deployment_minimum_healthy_percent = 100;
          deployment_maximum_percent = 200;
          deployment_circuit_breaker = {
            enable = true;
            rollback = true;
          };
          health_check_grace_period_seconds = 30;
          propagate_tags = "SERVICE";
          enable_ecs_managed_tags = true;
          network_configuration = {
            subnets = map (l: tf "aws_subnet.private_${l}.id") letters;
            security_groups = [(tf "aws_security_group.service_${s.name}.id")];
            assign_public_ip = false;
          };
          load_balancer = [
            {
              target_group_arn = tf "aws_lb_target_group.${s.name}.arn";
              container_name = s.name;
              container_port = s.port;
            }
          ];
          service_connect_configuration = {
            enabled = true;
            namespace = tf "aws_service_discovery_http_namespace.main.arn";
            service = [
              {
                port_name = s.name;
                discovery_name = s.name;
                client_alias = [
                  {
                    inherit (s) port;
                    dns_name = s.name;
                  }
                ];
              }
            ];
          };
          # The autoscaling target owns the count after creation.
          lifecycle.ignore_changes = ["desired_count"];
          # A target group must belong to the load balancer (through the
          # listener or this service's rule) before a service may use it.
          depends_on =
            ["aws_lb_listener.${config.loadBalancer.appListener}"]
            ++ lib.optional (!s.isDefaultRoute) "aws_lb_listener_rule.${s.name}";
        });

      aws_appautoscaling_target = perService (s: let
        min =
          if cfg.autoscale
          then s.instances.min
          else s.instances.desired;
        max =
          if cfg.autoscale
          then s.instances.max
          else s.instances.desired;
      in
        lib.nameValuePair s.name {
          service_namespace = "ecs";
          scalable_dimension = "ecs:service:DesiredCount";
          resource_id = "service/${tf "aws_ecs_cluster.main.name"}/${tf "aws_ecs_service.${s.name}.name"}";
          min_capacity = min;
          max_capacity = max;
        });

      aws_appautoscaling_policy = perService (s:
        lib.nameValuePair "${s.name}_cpu" {
          name = name "${s.name}-cpu";
          policy_type = "TargetTrackingScaling";
          service_namespace = tf "aws_appautoscaling_target.${s.name}.service_namespace";
          scalable_dimension = tf "aws_appautoscaling_target.${s.name}.scalable_dimension";
          resource_id = tf "aws_appautoscaling_target.${s.name}.resource_id";
          target_tracking_scaling_policy_configuration = {
            target_value = cfg.cpuTargetPercent;
            predefined_metric_specification.predefined_metric_type = "ECSServiceAverageCPUUtilization";
            scale_in_cooldown = 300;
            scale_out_cooldown = 60;
          };
        });
    };

    output = {
      ecr_repository_urls = {
        description = "ECR repository URL per workload.";
        value = lib.mapAttrs (n: _: tf "aws_ecr_repository.${n}.repository_url") catalog.workloads;
      };
      cluster_name.value = tf "aws_ecs_cluster.main.name";
      service_names = {
        description = "ECS service name per catalog service.";
        value = lib.mapAttrs (n: _: tf "aws_ecs_service.${n}.name") catalog.services;
      };
    };
  };
}
