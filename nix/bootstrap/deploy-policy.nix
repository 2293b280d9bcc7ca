# What the deploy role may change, one managed policy per concern (a managed
# policy holds up to 6144 characters; all inline policies of a role together
# only 10240). Every resource is in this account and region; IAM roles and
# policies, Lambda functions and ECR repositories only under an environment's
# prefix (`production-…`, `staging/…`), and iam:PassRole only for those roles.
{lib, ...}: let
  n = import ./names.nix;
  bucketArn = "arn:aws:s3:::${n.bucket}";
  underEnvironments = f: map f n.environments;
  allow = Sid: Action: Resource: {
    inherit Sid Action Resource;
    Effect = "Allow";
  };
  # For actions that AWS only authorizes on `*`: pinned to the region instead.
  allowInRegion = Sid: Action:
    allow Sid Action "*" // {Condition.StringEquals."aws:RequestedRegion" = n.region;};

  statements = {
    # The Terraform state and the images it deploys.
    artifacts = [
      (allow "ListState" "s3:ListBucket" bucketArn)
      (allow "WriteState" ["s3:GetObject" "s3:PutObject" "s3:DeleteObject"]
        (underEnvironments (env: "${bucketArn}/${env}/*")))
      (allowInRegion "EcrLogin" "ecr:GetAuthorizationToken")
      (allow "EcrRepositories" [
          "ecr:BatchCheckLayerAvailability"
          "ecr:BatchDeleteImage"
          "ecr:BatchGetImage"
          "ecr:CompleteLayerUpload"
          "ecr:CreateRepository"
          "ecr:DeleteLifecyclePolicy"
          "ecr:DeleteRepository"
          "ecr:DeleteRepositoryPolicy"
          "ecr:GetDownloadUrlForLayer"
          "ecr:InitiateLayerUpload"
          "ecr:PutImage"
          "ecr:PutImageScanningConfiguration"
          "ecr:PutImageTagMutability"
          "ecr:PutLifecyclePolicy"
          "ecr:SetRepositoryPolicy"
          "ecr:TagResource"
          "ecr:UntagResource"
          "ecr:UploadLayerPart"
        ]
        (underEnvironments (env: n.arn "ecr" "repository/${env}/*")))
    ];

    network = [
      (allow "Vpc" [
        "ec2:AllocateAddress"
        "ec2:AssociateAddress"
        "ec2:AssociateRouteTable"
        "ec2:AttachInternetGateway"
        "ec2:AuthorizeSecurityGroupEgress"
        "ec2:AuthorizeSecurityGroupIngress"
        "ec2:CreateFlowLogs"
        "ec2:CreateInternetGateway"
        "ec2:CreateNatGateway"
        "ec2:CreateRoute"
        "ec2:CreateRouteTable"
        "ec2:CreateSecurityGroup"
        "ec2:CreateSubnet"
        "ec2:CreateTags"
        "ec2:CreateVpc"
        "ec2:CreateVpcEndpoint"
        "ec2:DeleteFlowLogs"
        "ec2:DeleteInternetGateway"
        "ec2:DeleteNatGateway"
        # Terraform deletes the migration function's leftover (available)
        # Lambda network interfaces before its security group and subnets.
        "ec2:DeleteNetworkInterface"
        "ec2:DeleteRoute"
        "ec2:DeleteRouteTable"
        "ec2:DeleteSecurityGroup"
        "ec2:DeleteSubnet"
        "ec2:DeleteTags"
        "ec2:DeleteVpc"
        "ec2:DeleteVpcEndpoints"
        "ec2:DetachInternetGateway"
        "ec2:DisassociateAddress"
        "ec2:DisassociateRouteTable"
        "ec2:ModifySecurityGroupRules"
        "ec2:ModifySubnetAttribute"
        "ec2:ModifyVpcAttribute"
        "ec2:ModifyVpcEndpoint"
        "ec2:ReleaseAddress"
        "ec2:ReplaceRoute"
        "ec2:ReplaceRouteTableAssociation"
        "ec2:RevokeSecurityGroupEgress"
        "ec2:RevokeSecurityGroupIngress"
        "ec2:UpdateSecurityGroupRuleDescriptionsEgress"
        "ec2:UpdateSecurityGroupRuleDescriptionsIngress"
      ] (n.arn "ec2" "*"))
      # CreateVpcEndpoint may also be authorized on the endpoint service, whose
      # ARN names AWS's account for AWS services; this covers only those.
      (lib.recursiveUpdate (allowInRegion "AwsEndpointServices" "ec2:CreateVpcEndpoint") {
        Condition.StringEquals."ec2:VpceServiceOwner" = "amazon";
      })
      (allow "LoadBalancers" [
        "elasticloadbalancing:AddListenerCertificates"
        "elasticloadbalancing:AddTags"
        "elasticloadbalancing:CreateListener"
        "elasticloadbalancing:CreateLoadBalancer"
        "elasticloadbalancing:CreateRule"
        "elasticloadbalancing:CreateTargetGroup"
        "elasticloadbalancing:DeleteListener"
        "elasticloadbalancing:DeleteLoadBalancer"
        "elasticloadbalancing:DeleteRule"
        "elasticloadbalancing:DeleteTargetGroup"
        "elasticloadbalancing:ModifyListener"
        "elasticloadbalancing:ModifyListenerAttributes"
        "elasticloadbalancing:ModifyLoadBalancerAttributes"
        "elasticloadbalancing:ModifyRule"
        "elasticloadbalancing:ModifyTargetGroup"
        "elasticloadbalancing:ModifyTargetGroupAttributes"
        "elasticloadbalancing:RemoveListenerCertificates"
        "elasticloadbalancing:RemoveTags"
        "elasticloadbalancing:SetSecurityGroups"
        "elasticloadbalancing:SetSubnets"
      ] (n.arn "elasticloadbalancing" "*"))
      (allowInRegion "ServiceConnectNamespaces" [
        "servicediscovery:CreateHttpNamespace"
        "servicediscovery:TagResource"
      ])
      (allow "ServiceDiscovery" [
        "servicediscovery:CreateService"
        "servicediscovery:DeleteNamespace"
        "servicediscovery:DeleteService"
        "servicediscovery:TagResource"
        "servicediscovery:UntagResource"
        "servicediscovery:UpdateHttpNamespace"
        "servicediscovery:UpdateService"
      ] (n.arn "servicediscovery" "*"))
      # Certificate validation records, when an environment has a domain.
      (allow "DnsValidationRecords" [
        "route53:ChangeResourceRecordSets"
        "route53:GetChange"
      ] ["arn:aws:route53:::hostedzone/*" "arn:aws:route53:::change/*"])
      (allowInRegion "RequestCertificates" "acm:RequestCertificate")
      (allow "Certificates" [
        "acm:AddTagsToCertificate"
        "acm:DeleteCertificate"
        "acm:RemoveTagsFromCertificate"
      ] (n.arn "acm" "certificate/*"))
    ];

    compute = [
      (allowInRegion "TaskDefinitions" [
        "ecs:DeregisterTaskDefinition"
        "ecs:RegisterTaskDefinition"
      ])
      (allow "Ecs" [
        "ecs:CreateCluster"
        "ecs:CreateService"
        "ecs:DeleteCluster"
        "ecs:DeleteService"
        "ecs:PutClusterCapacityProviders"
        "ecs:TagResource"
        "ecs:UntagResource"
        "ecs:UpdateCluster"
        "ecs:UpdateClusterSettings"
        "ecs:UpdateService"
      ] (n.arn "ecs" "*"))
      (allow "AutoScaling" [
        "application-autoscaling:DeleteScalingPolicy"
        "application-autoscaling:DeregisterScalableTarget"
        "application-autoscaling:PutScalingPolicy"
        "application-autoscaling:RegisterScalableTarget"
        "application-autoscaling:TagResource"
        "application-autoscaling:UntagResource"
      ] (n.arn "application-autoscaling" "scalable-target/*"))
      (allow "MigrationFunction" [
        "lambda:AddPermission"
        "lambda:CreateFunction"
        "lambda:DeleteFunction"
        # Drops the reserved concurrency that earlier renders set.
        "lambda:DeleteFunctionConcurrency"
        "lambda:InvokeFunction"
        "lambda:PublishVersion"
        "lambda:RemovePermission"
        "lambda:TagResource"
        "lambda:UntagResource"
        "lambda:UpdateFunctionCode"
        "lambda:UpdateFunctionConfiguration"
      ] (underEnvironments (env: n.arn "lambda" "function:${env}-*")))
    ];

    data = [
      (allow "Database" [
        "rds:AddTagsToResource"
        "rds:CreateDBInstance"
        "rds:CreateDBParameterGroup"
        "rds:CreateDBSnapshot"
        "rds:CreateDBSubnetGroup"
        "rds:DeleteDBInstance"
        "rds:DeleteDBParameterGroup"
        "rds:DeleteDBSubnetGroup"
        "rds:ModifyDBInstance"
        "rds:ModifyDBParameterGroup"
        "rds:ModifyDBSubnetGroup"
        "rds:RebootDBInstance"
        "rds:RemoveTagsFromResource"
        # Terraform resets a parameter removed from the parameter group.
        "rds:ResetDBParameterGroup"
      ] (n.arn "rds" "*"))
      # RDS creates and rotates the master password secret (`rds!…`) on the
      # caller's behalf; nothing here reads a secret value.
      (allow "RdsManagedSecret" [
        "secretsmanager:CreateSecret"
        "secretsmanager:DeleteSecret"
        "secretsmanager:RotateSecret"
        "secretsmanager:TagResource"
      ] (n.arn "secretsmanager" "secret:rds!*"))
      (allowInRegion "CreateKeys" "kms:CreateKey")
      (allow "Keys" [
        "kms:CreateAlias"
        "kms:CreateGrant"
        "kms:Decrypt"
        "kms:DeleteAlias"
        "kms:EnableKeyRotation"
        "kms:Encrypt"
        "kms:GenerateDataKey"
        "kms:PutKeyPolicy"
        # Deleting a KMS-encrypted ECR repository retires the grant ECR holds.
        "kms:RetireGrant"
        "kms:ScheduleKeyDeletion"
        "kms:TagResource"
        "kms:UntagResource"
        "kms:UpdateAlias"
        "kms:UpdateKeyDescription"
      ] [(n.arn "kms" "key/*") (n.arn "kms" "alias/*")])
    ];

    # Every role the deploy role creates or writes a policy on carries the
    # environment boundary (environment-boundary.nix): whatever policy it
    # writes, the role can do no more than the boundary allows, and nothing in
    # IAM. The boundary itself is out of its reach.
    identity = let
      withBoundary = statement: lib.recursiveUpdate statement {Condition.StringEquals."iam:PermissionsBoundary" = n.environmentBoundary;};
      workloadRoles = underEnvironments (env: n.iamArn "role/${env}-*");
      deny = Sid: Action: Resource: {
        inherit Sid Action Resource;
        Effect = "Deny";
      };
    in [
      (withBoundary (allow "BoundedWorkloadRoles" [
          "iam:CreateRole"
          "iam:DeleteRolePolicy"
          "iam:DetachRolePolicy"
          "iam:PutRolePermissionsBoundary"
          "iam:PutRolePolicy"
        ]
        workloadRoles))
      (allow "WorkloadRoles" [
          "iam:DeleteRole"
          "iam:TagRole"
          "iam:UntagRole"
          "iam:UpdateAssumeRolePolicy"
          "iam:UpdateRole"
          "iam:UpdateRoleDescription"
        ]
        workloadRoles)
      (allow "WorkloadPolicies" [
          "iam:CreatePolicy"
          "iam:CreatePolicyVersion"
          "iam:DeletePolicy"
          "iam:DeletePolicyVersion"
          "iam:TagPolicy"
          "iam:UntagPolicy"
        ]
        (underEnvironments (env: n.iamArn "policy/${env}-*")))
      # Only the environments' own policies and the AWS service-role policies
      # tasks and Lambda functions use: never an administrator policy.
      (withBoundary (allow "AttachWorkloadPolicies" "iam:AttachRolePolicy" workloadRoles
        // {
          Condition.ArnLike."iam:PolicyARN" =
            underEnvironments (env: n.iamArn "policy/${env}-*")
            ++ map (name: "arn:aws:iam::aws:policy/service-role/${name}") [
              "AmazonECSTaskExecutionRolePolicy"
              "AWSLambdaBasicExecutionRole"
              "AWSLambdaVPCAccessExecutionRole"
            ];
        }))
      (allow "PassWorkloadRoles" "iam:PassRole" workloadRoles
        // {
          Condition.StringEquals."iam:PassedToService" = [
            "ecs-tasks.amazonaws.com"
            "lambda.amazonaws.com"
            "vpc-flow-logs.amazonaws.com"
          ];
        })
      (allow "ServiceLinkedRoles" "iam:CreateServiceLinkedRole" (n.iamArn "role/aws-service-role/*")
        // {
          Condition.StringEquals."iam:AWSServiceName" = [
            "ecs.amazonaws.com"
            "ecs.application-autoscaling.amazonaws.com"
            "elasticloadbalancing.amazonaws.com"
            "rds.amazonaws.com"
          ];
        })
      # Explicit denials, whatever else is allowed: no role loses the
      # boundary or gets another one, and the boundary does not change.
      (deny "KeepBoundaryOnRoles" "iam:DeleteRolePermissionsBoundary" "*")
      (deny "NoOtherBoundary" "iam:PutRolePermissionsBoundary" "*"
        // {Condition.StringNotEquals."iam:PermissionsBoundary" = n.environmentBoundary;})
      (deny "KeepBoundary" [
          "iam:CreatePolicyVersion"
          "iam:DeletePolicy"
          "iam:DeletePolicyVersion"
          "iam:SetDefaultPolicyVersion"
        ]
        n.environmentBoundary)
    ];

    observability = [
      (allow "LogGroups" [
        "logs:AssociateKmsKey"
        "logs:CreateLogGroup"
        "logs:DeleteLogGroup"
        "logs:DeleteMetricFilter"
        "logs:DeleteRetentionPolicy"
        "logs:DisassociateKmsKey"
        "logs:PutMetricFilter"
        "logs:PutRetentionPolicy"
        "logs:TagLogGroup"
        "logs:TagResource"
        "logs:UntagLogGroup"
        "logs:UntagResource"
      ] (n.arn "logs" "log-group:*"))
      (allow "Alarms" [
        "cloudwatch:DeleteAlarms"
        "cloudwatch:PutMetricAlarm"
        "cloudwatch:TagResource"
        "cloudwatch:UntagResource"
      ] (n.arn "cloudwatch" "alarm:*"))
      (allow "Dashboards" [
        "cloudwatch:DeleteDashboards"
        "cloudwatch:PutDashboard"
      ] "arn:aws:cloudwatch::${n.account}:dashboard/*")
      (allow "AlertTopics" [
        "sns:CreateTopic"
        "sns:DeleteTopic"
        "sns:SetTopicAttributes"
        "sns:Subscribe"
        "sns:TagResource"
        "sns:Unsubscribe"
        "sns:UntagResource"
      ] (n.arn "sns" "*"))
    ];
  };
in {
  resource = {
    aws_iam_policy = lib.mapAttrs' (concern: statements:
      lib.nameValuePair "deploy_${concern}" {
        name = "\${var.name}-github-deploy-${concern}";
        description = "Deploy from GitHub Actions: ${concern}";
        policy = n.policy statements;
      })
    statements;

    aws_iam_role_policy_attachment = lib.mapAttrs' (concern: _:
      lib.nameValuePair "deploy_${concern}" {
        role = "\${aws_iam_role.deploy.name}";
        policy_arn = "\${aws_iam_policy.deploy_${concern}.arn}";
      })
    statements;
  };
}
