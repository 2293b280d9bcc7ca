# Northflank's compute plans (northflank.com/pricing, "Services/Addons"), and
# the rule that maps a catalog size (Fargate CPU units, 1024 = 1 vCPU; MiB) to
# one: among the plans with at least the catalog's memory (a hard limit, unlike
# CPU), the one nearest in relative terms; ties go to the larger plan.
{lib}: let
  plans = [
    {
      id = "nf-compute-10";
      millicpu = 100;
      memory = 256;
    }
    {
      id = "nf-compute-20";
      millicpu = 200;
      memory = 512;
    }
    {
      id = "nf-compute-50";
      millicpu = 500;
      memory = 1024;
    }
    {
      id = "nf-compute-100-1";
      millicpu = 1000;
      memory = 1024;
    }
    {
      id = "nf-compute-100-2";
      millicpu = 1000;
      memory = 2048;
    }
    {
      id = "nf-compute-100-4";
      millicpu = 1000;
      memory = 4096;
    }
    {
      id = "nf-compute-200";
      millicpu = 2000;
      memory = 4096;
    }
    {
      id = "nf-compute-200-8";
      millicpu = 2000;
      memory = 8192;
    }
    {
      id = "nf-compute-400";
      millicpu = 4000;
      memory = 8192;
    }
  ];

  abs = n:
    if n < 0
    then -n
    else n;

  # |Δcpu|/cpu + |Δmemory|/memory, scaled by cpu·memory to stay in integers.
  distance = cpu: memory: plan:
    abs (plan.millicpu * 1024 - cpu * 1000)
    * memory
    + abs (plan.memory - memory) * cpu * 1000;

  closer = cpu: memory: a: b: let
    da = distance cpu memory a;
    db = distance cpu memory b;
  in
    da < db || (da == db && a.millicpu + a.memory > b.millicpu + b.memory);
in {
  inherit plans;

  # The plan id for a catalog size, e.g. nearest 256 512 == "nf-compute-20".
  nearest = cpu: memory: let
    roomy = lib.filter (plan: plan.memory >= memory) plans;
    candidates =
      if roomy == []
      then plans
      else roomy;
  in
    (lib.head (lib.sort (closer cpu memory) candidates)).id;
}
