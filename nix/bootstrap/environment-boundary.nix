# The permissions boundary of every IAM role the environments create
# (nix/aws: ECS task execution roles, the migration function's role, the VPC
# flow-logs role). A role's effective permissions are the intersection of its
# own policies and this one, so whatever policy the deploy role writes on a
# role, that role can do no more than what is listed here, and nothing in IAM.
# The deploy role may create and change roles only with this boundary
# (deploy-policy.nix), and may not change the boundary itself.
let
  n = import ./names.nix;
  underEnvironments = f: map f n.environments;
  allow = Sid: Action: Resource: {
    inherit Sid Action Resource;
    Effect = "Allow";
  };
  # For actions that AWS only authorizes on `*`: pinned to the region instead.
  allowInRegion = Sid: Action:
    allow Sid Action "*" // {Condition.StringEquals."aws:RequestedRegion" = n.region;};
in {
  resource.aws_iam_policy.environment_boundary = {
    name = "\${var.name}-environment-boundary";
    description = "Permissions boundary of the environments' IAM roles: what their workloads need at runtime";
    policy = n.policy [
      # ECS task execution: pull the environment's images.
      (allowInRegion "EcrLogin" "ecr:GetAuthorizationToken")
      (allow "PullImages" [
        "ecr:BatchCheckLayerAvailability"
        "ecr:BatchGetImage"
        "ecr:GetDownloadUrlForLayer"
      ] (underEnvironments (env: n.arn "ecr" "repository/${env}/*")))
      # Tasks, the migration function and VPC flow logs write their log streams
      # (AWSLambdaVPCAccessExecutionRole also grants logs:CreateLogGroup).
      (allow "WriteLogs" [
        "logs:CreateLogGroup"
        "logs:CreateLogStream"
        "logs:DescribeLogStreams"
        "logs:PutLogEvents"
      ] (n.arn "logs" "log-group:*"))
      # The database's RDS-managed master secret and its key.
      (allow "ReadDatabaseSecret" "secretsmanager:GetSecretValue" (n.arn "secretsmanager" "secret:rds!*"))
      (allow "DecryptDatabaseSecret" "kms:Decrypt" (n.arn "kms" "key/*"))
      # The migration function's network interfaces in the VPC
      # (AWSLambdaVPCAccessExecutionRole); AWS authorizes these on `*` only.
      (allowInRegion "FunctionNetworkInterfaces" [
        "ec2:AssignPrivateIpAddresses"
        "ec2:CreateNetworkInterface"
        "ec2:DeleteNetworkInterface"
        "ec2:DescribeNetworkInterfaces"
        "ec2:DescribeSubnets"
        "ec2:UnassignPrivateIpAddresses"
      ])
    ];
  };
}
