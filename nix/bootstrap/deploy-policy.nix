# What the deploy role may change, one managed policy per concern (a managed
# policy holds up to 6144 characters; all inline policies of a role together
# only 10240). Every resource is in this account and region. Outside IAM,
# every statement is scoped to this project, following the Service
# Authorization Reference for which condition keys each action supports
# (crates/infra-tests/service-authorization.json keeps the extract the tests
# check against):
# - by name where the environments name things (`production-…`, `staging/…`);
# - `aws:RequestTag/Project` on the call that creates a resource (the
#   environments' provider sets `default_tags`, so every create carries it);
# - `aws:ResourceTag/Project` on every call that reads or changes one;
# - `*` only where AWS authorizes an action on no resource, pinned to the
#   region, with the reason in infra-tests' allow-list.
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
  when = condition: statement: lib.recursiveUpdate statement {Condition = condition;};
  # The create call must tag the new resource with this project.
  onCreate = when {StringEquals."aws:RequestTag/Project" = n.project;};
  # The resource must already carry this project's tag.
  onOwn = when {StringEquals."aws:ResourceTag/Project" = n.project;};
  # Tag actions: any tag on this project's resources; and, for a resource being
  # created (tag-on-create is authorized separately) or not yet tagged, only a
  # request that sets this project's tag. Untagging only on its own resources.
  tagging = sid: tag: untag: resources: [
    (onOwn (allow "${sid}Tags" (tag ++ untag) resources))
    (when {
      StringEquals."aws:RequestTag/Project" = n.project;
      StringEqualsIfExists."aws:ResourceTag/Project" = n.project;
    } (allow "${sid}TagOnCreate" tag resources))
  ];

  ecrRepositories = underEnvironments (env: n.arn "ecr" "repository/${env}/*");
  ec2 = type: n.arn "ec2" "${type}/*";
  # The EC2 resources the environments create, and the call that creates each.
  ec2Creates = {
    vpc = ["ec2:CreateVpc"];
    internet-gateway = ["ec2:CreateInternetGateway"];
    elastic-ip = ["ec2:AllocateAddress"];
    subnet = ["ec2:CreateSubnet"];
    security-group = ["ec2:CreateSecurityGroup"];
    security-group-rule = ["ec2:AuthorizeSecurityGroupEgress" "ec2:AuthorizeSecurityGroupIngress"];
    route-table = ["ec2:CreateRouteTable"];
    natgateway = ["ec2:CreateNatGateway"];
    vpc-endpoint = ["ec2:CreateVpcEndpoint"];
    vpc-flow-log = ["ec2:CreateFlowLogs"];
  };
  ec2Owned = map ec2 (lib.attrNames ec2Creates);
  sidOf = type: lib.concatMapStrings (word: lib.toUpper (lib.substring 0 1 word) + lib.substring 1 (-1) word) (lib.splitString "-" type);
  loadBalancing = map (n.arn "elasticloadbalancing") ["loadbalancer/app/*" "targetgroup/*" "listener/app/*" "listener-rule/app/*"];
  ecs = underEnvironments (env: n.arn "ecs" "cluster/${env}") ++ underEnvironments (env: n.arn "ecs" "service/${env}/*");
  taskDefinitions = underEnvironments (env: n.arn "ecs" "task-definition/${env}-*");
  scalableTargets = n.arn "application-autoscaling" "scalable-target/*";
  functions = underEnvironments (env: n.arn "lambda" "function:${env}-*");
  database = lib.concatMap (type: underEnvironments (env: n.arn "rds" "${type}:${env}-*")) ["db" "pg" "subgrp" "snapshot"];
  keys = n.arn "kms" "key/*";
  logGroups = underEnvironments (env: n.arn "logs" "log-group:/${env}/*") ++ underEnvironments (env: n.arn "logs" "log-group:/aws/rds/instance/${env}-*");
  alarms = underEnvironments (env: n.arn "cloudwatch" "alarm:${env}-*");
  topics = underEnvironments (env: n.arn "sns" "${env}-*");

  statements = {
    # The Terraform state and the images it deploys.
    artifacts =
      [
        (allow "ListState" "s3:ListBucket" bucketArn)
        (allow "WriteState" ["s3:GetObject" "s3:PutObject" "s3:DeleteObject"]
          (underEnvironments (env: "${bucketArn}/${env}/*")))
        (allowInRegion "EcrLogin" "ecr:GetAuthorizationToken")
        (onCreate (allow "CreateEcrRepositories" "ecr:CreateRepository" ecrRepositories))
        (onOwn (allow "EcrRepositories" [
            "ecr:BatchCheckLayerAvailability"
            "ecr:BatchDeleteImage"
            "ecr:BatchGetImage"
            "ecr:CompleteLayerUpload"
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
            "ecr:UploadLayerPart"
          ]
          ecrRepositories))
      ]
      ++ tagging "Ecr" ["ecr:TagResource"] ["ecr:UntagResource"] ecrRepositories;

    # The VPC: each kind of resource is created only with the project's tag,
    # in a VPC (subnet, ...) that carries it; everything else only on tagged
    # resources.
    network =
      lib.mapAttrsToList (type: actions:
        onCreate (allow "Create${sidOf type}" actions (ec2 type)
          // lib.optionalAttrs (type == "vpc-endpoint") {
            # Endpoints of AWS services only.
            Condition.StringEquals."ec2:VpceServiceOwner" = "amazon";
          }))
      ec2Creates
      ++ [
        (onOwn (allow "Vpc" [
            # The parent resources (VPC, subnet, address, ...) of a create.
            "ec2:CreateFlowLogs"
            "ec2:CreateNatGateway"
            "ec2:CreateRouteTable"
            "ec2:CreateSecurityGroup"
            "ec2:CreateSubnet"
            "ec2:CreateVpcEndpoint"
            "ec2:AssociateRouteTable"
            "ec2:AttachInternetGateway"
            "ec2:AuthorizeSecurityGroupEgress"
            "ec2:AuthorizeSecurityGroupIngress"
            "ec2:CreateRoute"
            "ec2:CreateTags"
            "ec2:DeleteFlowLogs"
            "ec2:DeleteInternetGateway"
            "ec2:DeleteNatGateway"
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
          ]
          ec2Owned))
        # Tags in the call that creates a resource.
        (when {StringEquals."ec2:CreateAction" = map (lib.removePrefix "ec2:") (lib.concatLists (lib.attrValues ec2Creates));}
          (allow "TagOnCreate" "ec2:CreateTags" ec2Owned))
        # The VPC's default security group exists untagged; Terraform adopts it
        # (aws_default_security_group) by tagging it first.
        (when {
          StringEquals."aws:RequestTag/Project" = n.project;
          StringEqualsIfExists."aws:ResourceTag/Project" = n.project;
        } (allow "AdoptDefaultSecurityGroup" "ec2:CreateTags" (ec2 "security-group")))
        # Lambda creates its network interfaces untagged; Terraform deletes the
        # migration function's leftover (available) ones before its security
        # group and subnets. An interface in use cannot be deleted.
        (allow "LambdaNetworkInterfaces" "ec2:DeleteNetworkInterface" (ec2 "network-interface"))
      ];

    edge =
      [
        (onCreate (allow "CreateLoadBalancers" [
            "elasticloadbalancing:CreateLoadBalancer"
            "elasticloadbalancing:CreateTargetGroup"
          ]
          loadBalancing))
        (when {
            StringEquals."elasticloadbalancing:CreateAction" = [
              "CreateListener"
              "CreateLoadBalancer"
              "CreateRule"
              "CreateTargetGroup"
            ];
          }
          (allow "TagLoadBalancersOnCreate" "elasticloadbalancing:AddTags" loadBalancing))
        (onOwn (allow "LoadBalancers" [
            "elasticloadbalancing:AddListenerCertificates"
            "elasticloadbalancing:AddTags"
            "elasticloadbalancing:CreateListener"
            "elasticloadbalancing:CreateRule"
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
          ]
          loadBalancing))
        # Cloud Map namespaces and their tags have no resource type in IAM.
        (onCreate (allowInRegion "ServiceConnectNamespaces" [
          "servicediscovery:CreateHttpNamespace"
          "servicediscovery:TagResource"
        ]))
        (onOwn (allow "ServiceDiscovery" [
          "servicediscovery:CreateService"
          "servicediscovery:DeleteNamespace"
          "servicediscovery:DeleteService"
          "servicediscovery:UpdateHttpNamespace"
          "servicediscovery:UpdateService"
        ] [(n.arn "servicediscovery" "namespace/*") (n.arn "servicediscovery" "service/*")]))
        # Service Connect creates a Cloud Map service per ECS service; the
        # namespace (statement above) must be this project's.
        (allow "ServiceConnectServices" "servicediscovery:CreateService" (n.arn "servicediscovery" "service/*"))
        # Certificate validation records, when an environment has a domain:
        # the zone is the operator's (Route 53 has no tag conditions).
        (when {"ForAllValues:StringEquals"."route53:ChangeResourceRecordSetsRecordTypes" = ["A" "CNAME"];}
          (allow "DnsRecords" "route53:ChangeResourceRecordSets" "arn:aws:route53:::hostedzone/*"))
        (allow "DnsChanges" "route53:GetChange" "arn:aws:route53:::change/*")
        (onCreate (allowInRegion "RequestCertificates" "acm:RequestCertificate"))
        (onOwn (allow "Certificates" "acm:DeleteCertificate" (n.arn "acm" "certificate/*")))
      ]
      ++ tagging "Certificate" ["acm:AddTagsToCertificate"] ["acm:RemoveTagsFromCertificate"] (n.arn "acm" "certificate/*");

    compute =
      [
        (onCreate (allow "TaskDefinitions" "ecs:RegisterTaskDefinition" taskDefinitions))
        # Deregistering has no resource type in IAM; a running task keeps its revision.
        (allowInRegion "DeregisterTaskDefinitions" "ecs:DeregisterTaskDefinition")
        (onCreate (allow "CreateEcs" ["ecs:CreateCluster" "ecs:CreateService"] ecs))
        (when {StringEquals."ecs:CreateAction" = ["CreateCluster" "CreateService" "RegisterTaskDefinition"];}
          (allow "TagEcsOnCreate" "ecs:TagResource" (ecs ++ taskDefinitions)))
        (onOwn (allow "Ecs" [
          "ecs:DeleteCluster"
          "ecs:DeleteService"
          "ecs:PutClusterCapacityProviders"
          "ecs:TagResource"
          "ecs:UntagResource"
          "ecs:UpdateCluster"
          "ecs:UpdateClusterSettings"
          "ecs:UpdateService"
        ] (ecs ++ taskDefinitions)))
        # Register creates a scalable target, and changes it.
        (onCreate (allow "CreateScalableTargets" "application-autoscaling:RegisterScalableTarget" scalableTargets))
        (onOwn (allow "AutoScaling" [
            "application-autoscaling:DeleteScalingPolicy"
            "application-autoscaling:DeregisterScalableTarget"
            "application-autoscaling:PutScalingPolicy"
            "application-autoscaling:RegisterScalableTarget"
          ]
          scalableTargets))
        (onCreate (allow "CreateMigrationFunction" "lambda:CreateFunction" functions))
        (onOwn (allow "MigrationFunction" [
            "lambda:AddPermission"
            "lambda:DeleteFunction"
            # Drops the reserved concurrency that earlier renders set.
            "lambda:DeleteFunctionConcurrency"
            "lambda:InvokeFunction"
            "lambda:PublishVersion"
            "lambda:RemovePermission"
            "lambda:UpdateFunctionCode"
            "lambda:UpdateFunctionConfiguration"
          ]
          functions))
      ]
      ++ tagging "AutoScaling" ["application-autoscaling:TagResource"] ["application-autoscaling:UntagResource"] scalableTargets
      ++ tagging "Function" ["lambda:TagResource"] ["lambda:UntagResource"] functions;

    data =
      [
        (onCreate (allow "CreateDatabase" [
            "rds:CreateDBInstance"
            "rds:CreateDBParameterGroup"
            "rds:CreateDBSubnetGroup"
          ]
          database))
        (onOwn (allow "Database" [
            # The parameter and subnet groups a new instance names.
            "rds:CreateDBInstance"
            "rds:CreateDBSnapshot"
            "rds:DeleteDBInstance"
            "rds:DeleteDBParameterGroup"
            "rds:DeleteDBSubnetGroup"
            "rds:ModifyDBInstance"
            "rds:ModifyDBParameterGroup"
            "rds:ModifyDBSubnetGroup"
            "rds:RebootDBInstance"
            # Terraform resets a parameter removed from the parameter group.
            "rds:ResetDBParameterGroup"
          ]
          database))
        # The final snapshot (`<env>-postgres-final`): its request carries no
        # tags (RDS copies the instance's), so only its name scopes it.
        (allow "FinalSnapshots" "rds:CreateDBSnapshot" (underEnvironments (env: n.arn "rds" "snapshot:${env}-*")))
        # RDS creates and rotates the master password secret (`rds!…`) with the
        # caller's permissions; its tags are RDS's own, so only the name scopes
        # it. Nothing here reads a secret value.
        (allow "RdsManagedSecret" [
          "secretsmanager:CreateSecret"
          "secretsmanager:DeleteSecret"
          "secretsmanager:RotateSecret"
          "secretsmanager:TagResource"
        ] (n.arn "secretsmanager" "secret:rds!*"))
        # A key exists only once created: the request must tag it.
        (lib.recursiveUpdate (onCreate (allowInRegion "CreateKeys" ["kms:CreateKey" "kms:TagResource"])) {
          Condition.StringEqualsIfExists."aws:ResourceTag/Project" = n.project;
        })
        (onOwn (allow "Keys" [
            "kms:CreateAlias"
            "kms:Decrypt"
            "kms:DeleteAlias"
            "kms:EnableKeyRotation"
            "kms:Encrypt"
            "kms:GenerateDataKey"
            "kms:PutKeyPolicy"
            "kms:RetireGrant"
            "kms:ScheduleKeyDeletion"
            "kms:TagResource"
            "kms:UntagResource"
            "kms:UpdateAlias"
            "kms:UpdateKeyDescription"
          ]
          keys))
        # RDS creates grants on the project's keys for its resources.
        (lib.recursiveUpdate (onOwn (allow "KeyGrants" "kms:CreateGrant" keys)) {
          Condition.Bool."kms:GrantIsForAWSResource" = "true";
        })
        # ECR encrypts the repositories with its AWS managed key (aws/ecr),
        # which carries no Project tag: it creates a grant when a repository is
        # created and retires it when the repository is deleted, only through
        # ECR on the caller's behalf (for repositories scoped above).
        (when {StringEquals."kms:ViaService" = "ecr.${n.region}.amazonaws.com";}
          (allow "EcrRepositoryKeyGrants" ["kms:CreateGrant" "kms:RetireGrant"] keys))
        (allow "KeyAliases" ["kms:CreateAlias" "kms:DeleteAlias" "kms:UpdateAlias"]
          (underEnvironments (env: n.arn "kms" "alias/${env}/*")))
      ]
      ++ tagging "Database" ["rds:AddTagsToResource"] ["rds:RemoveTagsFromResource"] database;

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

    observability =
      [
        (onCreate (allow "CreateLogGroups" "logs:CreateLogGroup" logGroups))
        (onOwn (allow "LogGroups" [
            "logs:AssociateKmsKey"
            "logs:DeleteLogGroup"
            "logs:DeleteMetricFilter"
            "logs:DeleteRetentionPolicy"
            "logs:DisassociateKmsKey"
            "logs:PutMetricFilter"
            "logs:PutRetentionPolicy"
          ]
          logGroups))
        # PutMetricAlarm creates an alarm, and changes it.
        (onCreate (allow "CreateAlarms" "cloudwatch:PutMetricAlarm" alarms))
        (onOwn (allow "Alarms" ["cloudwatch:DeleteAlarms" "cloudwatch:PutMetricAlarm"] alarms))
        # Dashboards take no tags: named after their environment.
        (allow "Dashboards" [
          "cloudwatch:DeleteDashboards"
          "cloudwatch:PutDashboard"
        ] (underEnvironments (env: "arn:aws:cloudwatch::${n.account}:dashboard/${env}")))
        (onCreate (allow "CreateAlertTopics" "sns:CreateTopic" topics))
        (onOwn (allow "AlertTopics" [
            "sns:DeleteTopic"
            "sns:SetTopicAttributes"
            "sns:Subscribe"
          ]
          topics))
        # A subscription has no resource type in IAM.
        (allowInRegion "Unsubscribe" "sns:Unsubscribe")
      ]
      ++ tagging "LogGroup" ["logs:TagLogGroup" "logs:TagResource"] ["logs:UntagLogGroup" "logs:UntagResource"] logGroups
      ++ tagging "Alarm" ["cloudwatch:TagResource"] ["cloudwatch:UntagResource"] alarms
      ++ tagging "Topic" ["sns:TagResource"] ["sns:UntagResource"] topics;
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
