# Names and ARNs shared by the bootstrap modules. `${...}` in these strings are
# Terraform interpolations of the variables declared in variables.nix.
let
  account = "\${var.account_id}";
  region = "\${var.region}";
in {
  inherit account region;

  # The `Project` tag every resource of the environments carries (nix/aws's
  # provider `default_tags`); the deploy role's statements outside IAM require
  # it on what they change, or in the request that creates it.
  project = "\${var.name}";

  # The GitHub environments that deploy, and the prefix of everything each one
  # names in AWS (IAM roles and policies, Lambda functions, ECR repositories).
  environments = ["production" "staging"];

  # Terraform state keys are `<env>/terraform.tfstate`, locks `<key>.tflock`.
  bucket = "\${local.state_bucket}";
  githubOidcHost = "token.actions.githubusercontent.com";

  # A regional ARN in this account, e.g. `arn "ecs" "cluster/*"`.
  arn = service: resource: "arn:aws:${service}:${region}:${account}:${resource}";
  # A global (IAM) ARN in this account.
  iamArn = resource: "arn:aws:iam::${account}:${resource}";

  # The permissions boundary of every IAM role of the environments
  # (environment-boundary.nix); nix/aws names it `<project>-environment-boundary`.
  environmentBoundary = "arn:aws:iam::${account}:policy/\${var.name}-environment-boundary";

  # An IAM policy document from a list of statements.
  policy = statements:
    builtins.toJSON {
      Version = "2012-10-17";
      Statement = statements;
    };
}
