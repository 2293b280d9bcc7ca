# What every other module builds on: the environment's identity and region,
# the provider with default tags, the state backend and the per-deploy
# Terraform variables (docs/CONTRACTS.md, "Per-deploy values").
{
  config,
  lib,
  catalog,
  ...
}: let
  cfg = config.environment;
in {
  options.environment = {
    name = lib.mkOption {
      type = lib.types.strMatching "[a-z][a-z0-9-]{1,15}";
      description = "Environment name: prefix of every resource name and of the state key.";
    };
    project = lib.mkOption {
      type = lib.types.str;
      default = "iac-experiment";
      description = "Project tag on every resource.";
    };
    permissionsBoundary = lib.mkOption {
      type = lib.types.str;
      default = "${cfg.project}-environment-boundary";
      description = ''
        Name of the managed policy, created by the bootstrap (`<name>-environment-boundary`,
        nix/bootstrap/environment-boundary.nix), that bounds every IAM role of the environment.
        The deploy role may only create and change roles that carry it.
      '';
    };
    region = lib.mkOption {
      type = lib.types.str;
      description = "AWS region of the environment (and of its state bucket, see nix/bootstrap).";
    };
    availabilityZones = lib.mkOption {
      type = lib.types.addCheck (lib.types.listOf lib.types.str) (zones: lib.length zones >= 2);
      description = "Zones to spread subnets, NAT gateways and tasks over; at least two.";
    };
    logRetentionDays = lib.mkOption {
      # The values CloudWatch Logs accepts.
      type = lib.types.enum [1 3 5 7 14 30 60 90 120 150 180 365 400 545 731 1096 1827 2192 2557 2922 3288 3653];
      default = 365;
      description = "Retention of every CloudWatch log group of the environment.";
    };
  };

  config = {
    terraform = {
      # S3 lock files (`use_lockfile`) need Terraform 1.10.
      required_version = ">= 1.10";
      required_providers.aws = {
        source = "hashicorp/aws";
        # 5.100 is what the offline tests mirror; nixpkgs ships 6.x to `nix flake check` and the apps.
        version = ">= 5.100, < 7.0";
      };
      # The bucket comes from the bootstrap output: `terraform init -backend-config=bucket=…`.
      backend.s3 = {
        key = "${cfg.name}/terraform.tfstate";
        inherit (cfg) region;
        encrypt = true;
        use_lockfile = true;
      };
    };

    provider.aws = {
      inherit (cfg) region;
      default_tags.tags = {
        Project = cfg.project;
        Environment = cfg.name;
        ManagedBy = "terranix";
      };
    };

    # The account and partition of the credentials: the render names no account.
    data = {
      aws_caller_identity.current = {};
      aws_partition.current = {};
    };
    # Every IAM role of the environment (`permissions_boundary = tf "local.permissions_boundary"`).
    locals.permissions_boundary = "arn:\${data.aws_partition.current.partition}:iam::\${data.aws_caller_identity.current.account_id}:policy/${cfg.permissionsBoundary}";

    variable = {
      image_tags = {
        type = "map(string)";
        description = "Image tag per workload (catalog name); the image is `<ECR repository URL>:<tag>`.";
        validation = [
          {
            condition = "\${alltrue([for name in ${builtins.toJSON (lib.attrNames catalog.services)} : contains(keys(var.image_tags), name)])}";
            error_message = "image_tags needs a tag for every service of the catalog.";
          }
        ];
      };
      migration_lambda_zip = {
        type = "string";
        description = "Path to the migration function's zip, built by the flake.";
      };
      alert_email = {
        type = "string";
        description = "Address that receives the environment's alarms.";
        validation = [
          {
            condition = "\${can(regex(\"^[^@ ]+@[^@ ]+$\", var.alert_email))}";
            error_message = "alert_email must be an e-mail address.";
          }
        ];
      };
    };
  };
}
