# Adding a service to the catalog is the only edit needed to deploy it on AWS:
# rendering with a throwaway catalog entry (`reports`, in
# throwaway-catalog.toml) yields its ECR repository, task definition, service,
# target group, listener rule, security group, database access and upstream
# address in both environments, and the committed catalog yields none of them.
# Also checks the HTTPS variant of the load balancer (an environment knob).
#
# Evaluates to `true`, or fails naming what is missing:
#   nix-instantiate --eval --strict -E 'import ./nix/tests/throwaway-service.nix {
#     lib = import /path/to/nixpkgs/lib; terranix = "/path/to/terranix"; }'
# (terranix as a string: a path would be copied to the store, which a
# read-only evaluation cannot do).
{
  lib,
  terranix,
}: let
  withThrowaway = import ../render.nix {
    inherit lib terranix;
    catalogFile = ./throwaway-catalog.toml;
  };
  committed = import ../render.nix {inherit lib terranix;};

  expect = what: cond:
    if cond
    then true
    else throw "throwaway-service: ${what}";

  newResources = [
    "aws_ecr_repository.reports"
    "aws_ecr_lifecycle_policy.reports"
    "aws_ecs_task_definition.reports"
    "aws_ecs_service.reports"
    "aws_lb_target_group.reports"
    "aws_lb_listener_rule.reports"
    "aws_security_group.service_reports"
    "aws_vpc_security_group_ingress_rule.reports_from_alb"
    "aws_vpc_security_group_ingress_rule.database_from_reports"
    "aws_vpc_security_group_ingress_rule.api_from_reports"
    "aws_appautoscaling_target.reports"
    "aws_cloudwatch_log_group.service_reports"
    "aws_iam_role.execution_reports"
    "aws_iam_role.task_reports"
    "aws_iam_role_policy.task_reports"
    "aws_cloudwatch_metric_alarm.reports_unhealthy_targets"
  ];
  has = config: address: let
    parts = lib.splitString "." address;
  in
    lib.hasAttrByPath (["resource"] ++ parts) config;

  checkEnvironment = env: let
    path = "infra/${env}/main.tf.json";
    config = withThrowaway.${path};
    r = config.resource;
    container = lib.head (builtins.fromJSON r.aws_ecs_task_definition.reports.container_definitions);
    variables = lib.listToAttrs (map (e: lib.nameValuePair e.name e.value) container.environment);
  in
    lib.all lib.id (
      map (a: expect "${env}: ${a} is missing" (has config a)) newResources
      ++ map (a: expect "${env}: ${a} exists without the throwaway entry" (!has committed.${path} a)) newResources
      ++ [
        (expect "${env}: /reports routes" ((lib.head r.aws_lb_listener_rule.reports.condition).path_pattern.values == ["/reports" "/reports/*"]))
        (expect "${env}: health check path" (r.aws_lb_target_group.reports.health_check.path == "/reports/health"))
        (expect "${env}: upstream address" (variables.API_URL == "http://api:3000"))
        (expect "${env}: database secret read by the task, not by ECS" (variables ? DB_SECRET_ARN && !(container ? secrets)))
        (expect "${env}: task role" (r.aws_ecs_task_definition.reports.task_role_arn == "\${aws_iam_role.task_reports.arn}"))
        (expect "${env}: task size" (r.aws_ecs_task_definition.reports.cpu == "512"))
        (expect "${env}: image tag variable" (lib.hasSuffix "\${var.image_tags.reports}" container.image))
        (expect "${env}: ECR name" (r.aws_ecr_repository.reports.name == "${env}/reports"))
      ]
    );

  # HTTPS: an environment that names a domain gets a certificate, a TLS
  # listener that routes, and HTTP redirected to HTTPS.
  withDomain =
    (import "${terranix}/core/default.nix" {
      pkgs = {inherit lib;};
      extraArgs.catalog = import ../catalog.nix {inherit lib;} ../../services.toml;
      modules = [
        ../aws
        ../aws/environments/production.nix
        {
          loadBalancer = {
            domain = "app.example.com";
            hostedZoneId = "Z0000000000EXAMPLE";
          };
        }
      ];
    })
    .config;
  https = let
    r = withDomain.resource;
  in
    lib.all lib.id [
      (expect "https: listener" (r.aws_lb_listener.https.protocol == "HTTPS"))
      (expect "https: TLS 1.2+ policy" (lib.hasPrefix "ELBSecurityPolicy-TLS13" r.aws_lb_listener.https.ssl_policy))
      (expect "https: redirect" (r.aws_lb_listener.http.default_action.type == "redirect"))
      (expect "https: certificate" (r.aws_acm_certificate.main.domain_name == "app.example.com"))
      (expect "https: rules on the TLS listener" (r.aws_lb_listener_rule.api.listener_arn == "\${aws_lb_listener.https.arn}"))
      (expect "https: port 443 open" (r.aws_vpc_security_group_ingress_rule ? alb_https))
      (expect "https: url" (withDomain.output.url.value == "https://app.example.com"))
    ];
in
  lib.all checkEnvironment ["production" "staging"] && https
