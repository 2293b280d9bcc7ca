# What the repository's settings need, printed after `nix run .#bootstrap-aws`.
let
  repo = "\${var.github_repository}";
  # GitHub CLI commands: the environments (staging and production deploy from
  # main only, so no other branch can obtain their OIDC subject; production
  # waits for a required reviewer, first whoever runs these) and the
  # repository variables the workflows read.
  setup = ''
    reviewer=$(gh api user --jq .id)
    for env in staging production; do
      reviewers='[]'
      if [ "$env" = production ]; then reviewers="[{\"type\":\"User\",\"id\":$reviewer}]"; fi
      echo "{\"reviewers\":$reviewers,\"deployment_branch_policy\":{\"protected_branches\":false,\"custom_branch_policies\":true}}" |
        gh api --method PUT "repos/${repo}/environments/$env" --input -
      gh api --method POST "repos/${repo}/environments/$env/deployment-branch-policies" -f name=main
    done
    gh api --method PUT "repos/${repo}/environments/northflank-plan"
    gh variable set AWS_REGION --repo "${repo}" --body "''${var.region}"
    gh variable set TF_STATE_BUCKET --repo "${repo}" --body "''${aws_s3_bucket.state.bucket}"
    gh variable set AWS_DEPLOY_ROLE_ARN --repo "${repo}" --body "''${aws_iam_role.deploy.arn}"
    gh variable set AWS_PLAN_ROLE_ARN --repo "${repo}" --body "''${aws_iam_role.plan.arn}"
  '';
in {
  output = {
    region = {
      description = "Repository variable AWS_REGION";
      value = "\${var.region}";
    };
    state_bucket = {
      description = "Repository variable TF_STATE_BUCKET (terraform init -backend-config=bucket=...)";
      value = "\${aws_s3_bucket.state.bucket}";
    };
    deploy_role_arn = {
      description = "Repository variable AWS_DEPLOY_ROLE_ARN (assumed by the production and staging environments)";
      value = "\${aws_iam_role.deploy.arn}";
    };
    plan_role_arn = {
      description = "Repository variable AWS_PLAN_ROLE_ARN (assumed by pull requests, read-only)";
      value = "\${aws_iam_role.plan.arn}";
    };
    github_settings = {
      description = "GitHub CLI commands that create the environments and set the variables above";
      value = setup;
    };
  };
}
