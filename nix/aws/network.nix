# The VPC: a public and a private subnet per zone, an internet gateway, NAT,
# route tables, flow logs, and VPC endpoints so that private tasks reach ECR,
# S3, Secrets Manager and CloudWatch Logs without going through the NAT.
{
  config,
  lib,
  logGroup,
  ...
}: let
  h = import ./lib.nix {inherit lib;};
  inherit (h) tf;
  env = config.environment;
  cfg = config.network;
  zones = env.availabilityZones;
  letters = map h.zoneLetter zones;
  perZone = h.perZone zones;
  name = suffix: "${env.name}-${suffix}";

  # Public subnets take the first /20s of the VPC, private ones start half way.
  subnetCidr = index: tf "cidrsubnet(\"${cfg.cidr}\", 4, ${toString index})";
  # One NAT gateway per zone, or a single one in the first zone (cheaper, but
  # the private subnets of every zone lose egress when that zone fails).
  natLetters =
    if cfg.natGatewayPerZone
    then letters
    else [(lib.head letters)];
  natFor = letter:
    if cfg.natGatewayPerZone
    then letter
    else lib.head letters;

  interfaceEndpoints = ["ecr.api" "ecr.dkr" "secretsmanager" "logs"];
  endpointName = service: lib.replaceStrings ["."] ["_"] service;
in {
  options.network = {
    cidr = lib.mkOption {
      type = lib.types.strMatching "[0-9.]+/16";
      description = "The VPC's IPv4 range (a /16, cut into /20 subnets).";
    };
    natGatewayPerZone = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = "One NAT gateway per zone (true) or a single shared one (false).";
    };
  };

  config = {
    resource = {
      aws_vpc.main = {
        cidr_block = cfg.cidr;
        enable_dns_support = true;
        enable_dns_hostnames = true; # needed by private DNS of interface endpoints
        tags.Name = name "vpc";
      };

      # The default security group of a VPC admits its own members; no rules
      # means nothing uses it by accident.
      aws_default_security_group.default = {
        vpc_id = tf "aws_vpc.main.id";
        tags.Name = name "default-unused";
      };

      aws_subnet =
        lib.mapAttrs' (letter: subnet: lib.nameValuePair "public_${letter}" subnet) (perZone (index: zone: {
          vpc_id = tf "aws_vpc.main.id";
          availability_zone = zone;
          cidr_block = subnetCidr index;
          # Only the load balancer and NAT gateways live here, with their own addresses.
          map_public_ip_on_launch = false;
          tags = {
            Name = name "public-${zone}";
            Tier = "public";
          };
        }))
        // lib.mapAttrs' (letter: subnet: lib.nameValuePair "private_${letter}" subnet) (perZone (index: zone: {
          vpc_id = tf "aws_vpc.main.id";
          availability_zone = zone;
          cidr_block = subnetCidr (8 + index);
          tags = {
            Name = name "private-${zone}";
            Tier = "private";
          };
        }));

      aws_internet_gateway.main = {
        vpc_id = tf "aws_vpc.main.id";
        tags.Name = name "igw";
      };

      aws_eip = lib.genAttrs (map (l: "nat_${l}") natLetters) (eip: {
        domain = "vpc";
        tags.Name = name (lib.replaceStrings ["_"] ["-"] eip);
        depends_on = ["aws_internet_gateway.main"];
      });

      aws_nat_gateway = lib.genAttrs natLetters (letter: {
        allocation_id = tf "aws_eip.nat_${letter}.id";
        subnet_id = tf "aws_subnet.public_${letter}.id";
        tags.Name = name "nat-${letter}";
        depends_on = ["aws_internet_gateway.main"];
      });

      aws_route_table =
        {
          public = {
            vpc_id = tf "aws_vpc.main.id";
            tags.Name = name "public";
          };
        }
        // lib.genAttrs (map (l: "private_${l}") letters) (table: {
          vpc_id = tf "aws_vpc.main.id";
          tags.Name = name (lib.replaceStrings ["_"] ["-"] table);
        });

      aws_route =
        {
          public_internet = {
            route_table_id = tf "aws_route_table.public.id";
            destination_cidr_block = "0.0.0.0/0";
            gateway_id = tf "aws_internet_gateway.main.id";
          };
        }
        // lib.listToAttrs (map (letter:
          lib.nameValuePair "private_${letter}_nat" {
            route_table_id = tf "aws_route_table.private_${letter}.id";
            destination_cidr_block = "0.0.0.0/0";
            nat_gateway_id = tf "aws_nat_gateway.${natFor letter}.id";
          })
        letters);

      aws_route_table_association = lib.listToAttrs (lib.concatMap (letter: [
          (lib.nameValuePair "public_${letter}" {
            subnet_id = tf "aws_subnet.public_${letter}.id";
            route_table_id = tf "aws_route_table.public.id";
          })
          (lib.nameValuePair "private_${letter}" {
            subnet_id = tf "aws_subnet.private_${letter}.id";
            route_table_id = tf "aws_route_table.private_${letter}.id";
          })
        ])
        letters);

      # S3 (ECR image layers) through a free gateway endpoint on the private
      # route tables; the AWS APIs tasks and the migration function call
      # through interface endpoints in the private subnets.
      aws_vpc_endpoint =
        {
          s3 = {
            vpc_id = tf "aws_vpc.main.id";
            service_name = "com.amazonaws.${env.region}.s3";
            vpc_endpoint_type = "Gateway";
            route_table_ids = map (l: tf "aws_route_table.private_${l}.id") letters;
            tags.Name = name "s3";
          };
        }
        // lib.listToAttrs (map (service:
          lib.nameValuePair (endpointName service) {
            vpc_id = tf "aws_vpc.main.id";
            service_name = "com.amazonaws.${env.region}.${service}";
            vpc_endpoint_type = "Interface";
            private_dns_enabled = true;
            subnet_ids = map (l: tf "aws_subnet.private_${l}.id") letters;
            security_group_ids = [(tf "aws_security_group.endpoints.id")];
            tags.Name = name service;
          })
        interfaceEndpoints);

      aws_security_group.endpoints = {
        name = name "endpoints";
        description = "Interface VPC endpoints: HTTPS from inside the VPC";
        vpc_id = tf "aws_vpc.main.id";
        tags.Name = name "endpoints";
      };
      aws_vpc_security_group_ingress_rule.endpoints_https = {
        security_group_id = tf "aws_security_group.endpoints.id";
        description = "HTTPS from the VPC";
        ip_protocol = "tcp";
        from_port = 443;
        to_port = 443;
        cidr_ipv4 = cfg.cidr;
      };

      # Rejected and accepted flows, for incident forensics.
      aws_flow_log.vpc = {
        vpc_id = tf "aws_vpc.main.id";
        traffic_type = "ALL";
        log_destination_type = "cloud-watch-logs";
        log_destination = tf "aws_cloudwatch_log_group.flow_logs.arn";
        iam_role_arn = tf "aws_iam_role.flow_logs.arn";
        max_aggregation_interval = 600;
        tags.Name = name "flow-logs";
      };
      aws_cloudwatch_log_group.flow_logs = logGroup "/${env.name}/vpc/flow-logs";
      aws_iam_role.flow_logs = {
        name = name "vpc-flow-logs";
        assume_role_policy = h.assumedBy "vpc-flow-logs.amazonaws.com";
        permissions_boundary = tf "local.permissions_boundary";
      };
      aws_iam_role_policy.flow_logs = {
        name = "write-flow-logs";
        role = tf "aws_iam_role.flow_logs.id";
        policy = h.policy [
          (h.allow ["logs:CreateLogStream" "logs:PutLogEvents" "logs:DescribeLogStreams"]
            "${tf "aws_cloudwatch_log_group.flow_logs.arn"}:*")
        ];
      };
    };

    output.vpc_id.value = tf "aws_vpc.main.id";
  };
}
