# Small helpers shared by the AWS modules: Terraform interpolation, IAM
# documents, per-AZ naming and checkov skips.
{lib}: rec {
  # `tf "aws_vpc.main.id"` is the Terraform interpolation `${aws_vpc.main.id}`.
  tf = expression: "\${${expression}}";

  # An IAM policy document from a list of statements.
  policy = statements:
    builtins.toJSON {
      Version = "2012-10-17";
      Statement = statements;
    };

  allow = Action: Resource: {
    inherit Action Resource;
    Effect = "Allow";
  };

  # The trust policy of a role that the AWS service `service` assumes.
  assumedBy = service:
    policy [
      {
        Effect = "Allow";
        Principal.Service = service;
        Action = "sts:AssumeRole";
      }
    ];

  # Per-AZ resources are named by the zone letter: `private_a`, `private_b`.
  zoneLetter = zone: lib.substring (lib.stringLength zone - 1) 1 zone;
  perZone = zones: f:
    lib.listToAttrs (lib.imap0 (index: zone: lib.nameValuePair (zoneLetter zone) (f index zone)) zones);

  # Terraform ignores a body property named "//" in JSON, so a deliberate
  # checkov exception lives next to the resource it concerns, in checkov's own
  # skip syntax. checkov does not read skips from Terraform JSON itself;
  # crates/infra-tests collects these and fails on any other finding, and on
  # a skip without a reason. Usage: `// checkovSkips { CKV_AWS_1 = "why"; }`.
  checkovSkips = skips:
    lib.optionalAttrs (skips != {}) {
      "//" = lib.mapAttrsToList (id: reason: "checkov:skip=${id}:${reason}") skips;
    };
}
