# GitHub's OIDC provider and the two roles GitHub Actions assume through it:
# `deploy` for this repository's `production` and `staging` environments only,
# `plan` (read-only) for its pull requests.
let
  n = import ./names.nix;
  repo = "\${var.github_repository}";
  trust = subjects:
    n.policy [
      {
        Effect = "Allow";
        Principal.Federated = n.iamArn "oidc-provider/${n.githubOidcHost}";
        Action = "sts:AssumeRoleWithWebIdentity";
        Condition.StringEquals = {
          "${n.githubOidcHost}:aud" = "sts.amazonaws.com";
          "${n.githubOidcHost}:sub" = subjects;
        };
      }
    ];
  # The session lasts as long as the longest job that assumes the role
  # (.github/workflows/deploy.yml's `timeout-minutes`, `role-duration-seconds`):
  # nothing refreshes it mid-job, and an apply that outlives it leaves the
  # state lock behind.
  role = description: maxSessionSeconds: subjects: {
    name = "\${var.name}-github-${description}";
    description = "Assumed by GitHub Actions of \${var.github_repository} to ${description}";
    assume_role_policy = trust subjects;
    max_session_duration = maxSessionSeconds;
    # The trust policy names the provider by ARN; create it first.
    depends_on = ["aws_iam_openid_connect_provider.github"];
  };
in {
  resource = {
    # AWS verifies GitHub's certificate itself; no thumbprints are needed.
    aws_iam_openid_connect_provider.github = {
      url = "https://${n.githubOidcHost}";
      client_id_list = ["sts.amazonaws.com"];
    };

    aws_iam_role = {
      deploy = role "deploy" (120 * 60) (map (env: "repo:${repo}:environment:${env}") n.environments);
      plan = role "plan" 3600 ["repo:${repo}:pull_request"];
    };
  };
}
