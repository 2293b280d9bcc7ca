# Read-only access to what the environments contain, for `terraform plan`
# (refresh) by both roles. Reads metadata only: no secret values, no object data.
# The plan role also reads the state, and writes nothing: not even the lock
# file, so a pull request can never hold the lock a deploy needs
# (`nix run .#plan-aws` plans with -lock=false).
let
  n = import ./names.nix;
  bucketArn = "arn:aws:s3:::${n.bucket}";
  # Wildcards only where every matching action reads metadata: never
  # `secretsmanager:Get*` (secret values), `logs:Get*` (log events) or
  # `ecr:Get*` (image layers).
  readActions = [
    "acm:DescribeCertificate"
    "acm:GetCertificate"
    "acm:ListCertificates"
    "acm:ListTagsForCertificate"
    "application-autoscaling:Describe*"
    "application-autoscaling:ListTagsForResource"
    "cloudwatch:Describe*"
    "cloudwatch:GetDashboard"
    "cloudwatch:List*"
    "ec2:Describe*"
    "ecr:DescribeImages"
    "ecr:DescribeRepositories"
    "ecr:GetLifecyclePolicy"
    "ecr:GetRepositoryPolicy"
    "ecr:ListTagsForResource"
    "ecs:Describe*"
    "ecs:List*"
    "elasticloadbalancing:Describe*"
    "kms:DescribeKey"
    "kms:GetKeyPolicy"
    "kms:GetKeyRotationStatus"
    "kms:List*"
    "lambda:Get*"
    "lambda:List*"
    "logs:DescribeLogGroups"
    "logs:DescribeMetricFilters"
    "logs:ListTagsForResource"
    "logs:ListTagsLogGroup"
    "rds:Describe*"
    "rds:ListTagsForResource"
    "secretsmanager:DescribeSecret"
    "secretsmanager:GetResourcePolicy"
    "servicediscovery:Get*"
    "servicediscovery:List*"
    "sns:Get*"
    "sns:List*"
  ];
in {
  resource = {
    aws_iam_policy.read = {
      name = "\${var.name}-github-read";
      description = "Read-only view of the deployed environments for terraform plan";
      policy = n.policy [
        {
          Sid = "DescribeEnvironments";
          Effect = "Allow";
          Action = readActions;
          Resource = "*";
          Condition.StringEquals."aws:RequestedRegion" = n.region;
        }
        {
          Sid = "DescribeDnsRecords";
          Effect = "Allow";
          Action = [
            "route53:GetChange"
            "route53:GetHostedZone"
            "route53:ListResourceRecordSets"
            "route53:ListTagsForResource"
          ];
          Resource = ["arn:aws:route53:::hostedzone/*" "arn:aws:route53:::change/*"];
        }
        {
          Sid = "DescribeIam";
          Effect = "Allow";
          Action = [
            "iam:GetPolicy"
            "iam:GetPolicyVersion"
            "iam:GetRole"
            "iam:GetRolePolicy"
            "iam:ListAttachedRolePolicies"
            "iam:ListInstanceProfilesForRole"
            "iam:ListPolicyVersions"
            "iam:ListRolePolicies"
          ];
          Resource = [(n.iamArn "role/*") (n.iamArn "policy/*")];
        }
      ];
    };

    aws_iam_role_policy_attachment = {
      deploy_read = {
        role = "\${aws_iam_role.deploy.name}";
        policy_arn = "\${aws_iam_policy.read.arn}";
      };
      plan_read = {
        role = "\${aws_iam_role.plan.name}";
        policy_arn = "\${aws_iam_policy.read.arn}";
      };
    };

    aws_iam_role_policy.plan_state = {
      name = "state-read";
      role = "\${aws_iam_role.plan.id}";
      policy = n.policy [
        {
          Sid = "ListState";
          Effect = "Allow";
          Action = "s3:ListBucket";
          Resource = bucketArn;
        }
        {
          Sid = "ReadState";
          Effect = "Allow";
          Action = "s3:GetObject";
          Resource = map (env: "${bucketArn}/${env}/terraform.tfstate") n.environments;
        }
      ];
    };
  };
}
