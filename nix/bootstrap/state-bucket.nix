# The Terraform state bucket: versioned, encrypted, private, TLS only.
# Locking uses S3 lock files (`use_lockfile = true`), so there is no DynamoDB table.
{lib, ...}: let
  n = import ./names.nix;
  inherit (import ../aws/lib.nix {inherit lib;}) checkovSkips;
  bucketArn = "arn:aws:s3:::${n.bucket}";
  id = "\${aws_s3_bucket.state.id}";
in {
  resource = {
    aws_s3_bucket.state =
      {
        inherit (n) bucket;
        lifecycle.prevent_destroy = true;
      }
      // checkovSkips {
        CKV_AWS_18 = "Access logs would need a second bucket for a few state writes per deploy; CloudTrail records who changed the state.";
        CKV_AWS_144 = "Versioning keeps every state revision and the state can be re-imported; a replica region would double the bootstrap for no recovery gain.";
        CKV2_AWS_62 = "Nothing consumes state-change events; the deploy workflow is the only writer.";
      };

    aws_s3_bucket_versioning.state = {
      bucket = id;
      versioning_configuration.status = "Enabled";
    };

    # SSE-KMS with the AWS-managed `aws/s3` key: usable by every principal the
    # bucket policy and IAM allow, so the roles need no KMS grants.
    aws_s3_bucket_server_side_encryption_configuration.state = {
      bucket = id;
      rule = [
        {
          apply_server_side_encryption_by_default.sse_algorithm = "aws:kms";
          bucket_key_enabled = true;
        }
      ];
    };

    aws_s3_bucket_public_access_block.state = {
      bucket = id;
      block_public_acls = true;
      block_public_policy = true;
      ignore_public_acls = true;
      restrict_public_buckets = true;
    };

    aws_s3_bucket_ownership_controls.state = {
      bucket = id;
      rule.object_ownership = "BucketOwnerEnforced";
    };

    # Old state versions are kept for 90 days, and at least the last 10.
    aws_s3_bucket_lifecycle_configuration.state = {
      bucket = id;
      depends_on = ["aws_s3_bucket_versioning.state"];
      rule = [
        {
          id = "state-history";
          status = "Enabled";
          filter = {};
          noncurrent_version_expiration = {
            noncurrent_days = 90;
            newer_noncurrent_versions = 10;
          };
          abort_incomplete_multipart_upload.days_after_initiation = 7;
        }
      ];
    };

    aws_s3_bucket_policy.state = {
      bucket = id;
      depends_on = ["aws_s3_bucket_public_access_block.state"];
      policy = n.policy [
        {
          Sid = "DenyInsecureTransport";
          Effect = "Deny";
          Principal = "*";
          Action = "s3:*";
          Resource = [bucketArn "${bucketArn}/*"];
          Condition.Bool."aws:SecureTransport" = "false";
        }
        {
          Sid = "DenyOutdatedTls";
          Effect = "Deny";
          Principal = "*";
          Action = "s3:*";
          Resource = [bucketArn "${bucketArn}/*"];
          Condition.NumericLessThan."s3:TlsVersion" = "1.2";
        }
      ];
    };
  };
}
