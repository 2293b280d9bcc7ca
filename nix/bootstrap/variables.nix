# Inputs of the bootstrap: which AWS account and region, and which repository
# may assume the roles.
{
  terraform = {
    required_version = ">= 1.10";
    required_providers.aws = {
      source = "hashicorp/aws";
      # 5.100 is what the offline tests mirror; nixpkgs ships 6.x to `nix flake check` and the apps.
      version = ">= 5.100, < 7.0";
    };
  };

  variable = {
    github_repository = {
      type = "string";
      description = "The GitHub repository (owner/name) whose workflows may assume the roles.";
      validation = [
        {
          condition = "\${can(regex(\"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$\", var.github_repository))}";
          error_message = "github_repository must look like owner/name.";
        }
      ];
    };
    account_id = {
      type = "string";
      description = "The AWS account to bootstrap (`aws sts get-caller-identity --query Account`).";
      validation = [
        {
          condition = "\${can(regex(\"^[0-9]{12}$\", var.account_id))}";
          error_message = "account_id must be 12 digits.";
        }
      ];
    };
    region = {
      type = "string";
      description = "The AWS region of the state bucket and of every deployed environment.";
      default = "us-east-1";
    };
    name = {
      type = "string";
      description = "Prefix of the bootstrap's own resources (state bucket, roles, policies).";
      default = "iac-experiment";
      validation = [
        {
          condition = "\${can(regex(\"^[a-z][a-z0-9-]{1,30}$\", var.name))}";
          error_message = "name must be a lowercase label of at most 31 characters.";
        }
      ];
    };
  };

  locals.state_bucket = "\${var.name}-tfstate-\${var.account_id}";

  provider.aws = {
    region = "\${var.region}";
    default_tags.tags = {
      Project = "\${var.name}";
      Stack = "bootstrap";
      ManagedBy = "terraform";
    };
  };
}
