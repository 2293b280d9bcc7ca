# Production: two zones with a NAT gateway each, a multi-AZ database that
# cannot be deleted (and leaves a final snapshot), services that autoscale.
{
  environment = {
    name = "production";
    region = "us-east-1";
    availabilityZones = ["us-east-1a" "us-east-1b"];
  };
  network = {
    cidr = "10.10.0.0/16";
    natGatewayPerZone = true;
  };
  # No domain yet: plain HTTP on the ALB's name. Setting `domain` and
  # `hostedZoneId` switches on HTTPS with an ACM certificate.
  loadBalancer.deletionProtection = true;
  containers.autoscale = true;
  database = {
    instanceClass = "db.t4g.small";
    allocatedStorageGiB = 20;
    maxAllocatedStorageGiB = 200;
    multiAz = true;
    deletionProtection = true;
    backupRetentionDays = 14;
  };
}
