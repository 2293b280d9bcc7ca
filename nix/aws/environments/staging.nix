# Staging: the same modules, smaller and disposable: one NAT gateway, a
# single-zone database without deletion protection, fixed service counts and
# a month of logs.
{
  environment = {
    name = "staging";
    region = "us-east-1";
    availabilityZones = ["us-east-1a" "us-east-1b"];
    logRetentionDays = 30;
  };
  network = {
    cidr = "10.20.0.0/16";
    natGatewayPerZone = false;
  };
  loadBalancer.deletionProtection = false;
  containers = {
    autoscale = false;
    keepImagesOnDestroy = false;
  };
  database = {
    instanceClass = "db.t4g.micro";
    maxAllocatedStorageGiB = 50;
    multiAz = false;
    deletionProtection = false;
    backupRetentionDays = 3;
  };
}
