# The shared public entry point: an ALB in the public subnets, one target group
# per catalog service (health-checked on its `health` path), the `/` service as
# the default action and a listener rule per other route (`/api`, `/api/*`).
# With a domain: HTTPS with an ACM certificate (DNS-validated in the given
# Route 53 zone) and HTTP redirected to HTTPS; without one: HTTP only.
{
  config,
  lib,
  catalog,
  ...
}: let
  h = import ./lib.nix {inherit lib;};
  inherit (h) tf;
  env = config.environment;
  cfg = config.loadBalancer;
  name = suffix: "${env.name}-${suffix}";
  letters = map h.zoneLetter env.availabilityZones;
  https =
    lib.throwIf (cfg.domain != null && cfg.hostedZoneId == null)
    "loadBalancer.domain needs loadBalancer.hostedZoneId (certificate validation)"
    (cfg.domain != null);

  services = lib.attrValues catalog.services;
  defaultService = lib.findFirst (s: s.isDefaultRoute) (throw "no service owns `/`") services;
  # Longer (more specific) prefixes first, so `/api/admin` wins over `/api`.
  routed = lib.sort (a: b:
    if lib.stringLength a.route != lib.stringLength b.route
    then lib.stringLength a.route > lib.stringLength b.route
    else a.name < b.name) (lib.filter (s: !s.isDefaultRoute) services);

  # Target groups are named by a prefix (AWS allows 6 characters) plus a
  # suffix Terraform picks, so a replacement (a port change) is created
  # before the old group goes: a fixed name would collide (ResourceInUse).
  targetGroupPrefix = s: "${lib.substring 0 1 env.name}${lib.substring 0 4 s.name}-";

  forwardTo = service: {
    type = "forward";
    target_group_arn = tf "aws_lb_target_group.${service.name}.arn";
  };
  inherit (cfg) appListener;

  noHttpsReason = "${env.name} names no domain, so there is no certificate: HTTP only until loadBalancer.domain is set";
in {
  options.loadBalancer = {
    domain = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      description = "Public host name; enables HTTPS. Null: plain HTTP on the ALB's DNS name.";
    };
    hostedZoneId = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      description = "Route 53 zone of `domain`, for certificate validation and the alias record.";
    };
    deletionProtection = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = "Refuse to delete the load balancer.";
    };
    appListener = lib.mkOption {
      type = lib.types.enum ["http" "https"];
      readOnly = true;
      default =
        if https
        then "https"
        else "http";
      description = "The listener that serves the application (derived from `domain`).";
    };
  };

  config = {
    resource =
      {
        aws_lb.main =
          {
            name = name "alb";
            load_balancer_type = "application";
            internal = false;
            subnets = map (l: tf "aws_subnet.public_${l}.id") letters;
            security_groups = [(tf "aws_security_group.alb.id")];
            drop_invalid_header_fields = true;
            enable_deletion_protection = cfg.deletionProtection;
          }
          // h.checkovSkips ({
              CKV_AWS_91 = "no access logs yet: they need a separate S3 bucket with SSE-S3 (ALB cannot write SSE-KMS); CloudWatch ALB metrics and alarms cover availability";
              CKV2_AWS_28 = "no WAF: a web ACL is a separate cost decision, tracked outside this change";
            }
            // lib.optionalAttrs (!https) {
              CKV2_AWS_20 = noHttpsReason;
            }
            // lib.optionalAttrs (!cfg.deletionProtection) {
              CKV_AWS_150 = "${env.name} is disposable and must be destroyable without a manual step";
            });

        aws_security_group.alb = {
          name = name "alb";
          description = "Public load balancer: HTTP(S) from anywhere, to the services' ports";
          vpc_id = tf "aws_vpc.main.id";
          tags.Name = name "alb";
        };

        aws_vpc_security_group_ingress_rule =
          {
            alb_http =
              {
                security_group_id = tf "aws_security_group.alb.id";
                description =
                  if https
                  then "HTTP from anywhere, redirected to HTTPS"
                  else "HTTP from anywhere";
                ip_protocol = "tcp";
                from_port = 80;
                to_port = 80;
                cidr_ipv4 = "0.0.0.0/0";
              }
              // h.checkovSkips {
                CKV_AWS_260 = "the public entry point: port 80 is open to the internet by design (redirects to HTTPS when a domain is set)";
              };
          }
          // lib.optionalAttrs https {
            alb_https = {
              security_group_id = tf "aws_security_group.alb.id";
              description = "HTTPS from anywhere";
              ip_protocol = "tcp";
              from_port = 443;
              to_port = 443;
              cidr_ipv4 = "0.0.0.0/0";
            };
          };

        aws_vpc_security_group_egress_rule = lib.mapAttrs' (_: s:
          lib.nameValuePair "alb_to_${s.name}" {
            security_group_id = tf "aws_security_group.alb.id";
            description = "To ${s.name} tasks";
            ip_protocol = "tcp";
            from_port = s.port;
            to_port = s.port;
            referenced_security_group_id = tf "aws_security_group.service_${s.name}.id";
          })
        catalog.services;

        aws_lb_target_group = lib.mapAttrs (_: s:
          {
            name_prefix = targetGroupPrefix s;
            inherit (s) port;
            protocol = "HTTP";
            target_type = "ip"; # Fargate tasks (awsvpc)
            vpc_id = tf "aws_vpc.main.id";
            deregistration_delay = 30;
            lifecycle.create_before_destroy = true;
            health_check = {
              enabled = true;
              path = s.health;
              matcher = "200";
              interval = 15;
              timeout = 5;
              healthy_threshold = 2;
              unhealthy_threshold = 3;
            };
          }
          // h.checkovSkips {
            CKV_AWS_378 = "TLS ends at the load balancer; tasks speak HTTP inside the VPC, reachable only from the ALB's security group";
          })
        catalog.services;

        aws_lb_listener =
          {
            http =
              {
                load_balancer_arn = tf "aws_lb.main.arn";
                port = 80;
                protocol = "HTTP";
                default_action =
                  if https
                  then {
                    type = "redirect";
                    redirect = {
                      port = "443";
                      protocol = "HTTPS";
                      status_code = "HTTP_301";
                    };
                  }
                  else forwardTo defaultService;
              }
              // h.checkovSkips (lib.optionalAttrs (!https) {
                CKV_AWS_2 = noHttpsReason;
                CKV_AWS_103 = noHttpsReason;
              });
          }
          // lib.optionalAttrs https {
            https = {
              load_balancer_arn = tf "aws_lb.main.arn";
              port = 443;
              protocol = "HTTPS";
              ssl_policy = "ELBSecurityPolicy-TLS13-1-2-2021-06";
              certificate_arn = tf "aws_acm_certificate_validation.main.certificate_arn";
              default_action = forwardTo defaultService;
            };
          };

        aws_lb_listener_rule = lib.listToAttrs (lib.imap1 (index: s:
          lib.nameValuePair s.name {
            listener_arn = tf "aws_lb_listener.${appListener}.arn";
            priority = index * 10;
            condition = [{path_pattern.values = s.pathPatterns;}];
            action = [(forwardTo s)];
          })
        routed);
      }
      // lib.optionalAttrs https {
        aws_acm_certificate.main = {
          domain_name = cfg.domain;
          validation_method = "DNS";
          lifecycle.create_before_destroy = true;
        };
        aws_route53_record =
          {
            certificate_validation = {
              zone_id = cfg.hostedZoneId;
              name = tf "one(aws_acm_certificate.main.domain_validation_options).resource_record_name";
              type = tf "one(aws_acm_certificate.main.domain_validation_options).resource_record_type";
              records = [(tf "one(aws_acm_certificate.main.domain_validation_options).resource_record_value")];
              ttl = 300;
              allow_overwrite = true;
            };
          }
          // {
            alb = {
              zone_id = cfg.hostedZoneId;
              name = cfg.domain;
              type = "A";
              alias = {
                name = tf "aws_lb.main.dns_name";
                zone_id = tf "aws_lb.main.zone_id";
                evaluate_target_health = true;
              };
            };
          };
        aws_acm_certificate_validation.main = {
          certificate_arn = tf "aws_acm_certificate.main.arn";
          validation_record_fqdns = [(tf "aws_route53_record.certificate_validation.fqdn")];
        };
      };

    output.url = {
      description = "Public URL of the environment.";
      value =
        if https
        then "https://${cfg.domain}"
        else "http://${tf "aws_lb.main.dns_name"}";
    };
  };
}
