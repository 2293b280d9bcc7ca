# The service catalog (services.toml), read with builtins.fromTOML and validated
# with the same rules as crates/catalog. Everything that deploys a service reads
# this: crane packages, images, ECS, the ALB, the Northflank template and CI.
{lib}: file: let
  raw =
    {
      services = {};
      jobs = {};
    }
    // builtins.fromTOML (builtins.readFile file);
  inherit (raw) services jobs;

  isLabel = name: builtins.match "[a-z]([a-z0-9-]{0,30}[a-z0-9])?" name != null;

  check = cond: msg:
    if cond
    then true
    else throw "invalid catalog ${toString file}: ${msg}";

  allPorts = lib.concatMap (s: [s.port s.metrics_port]) (lib.attrValues services);
  routes = lib.mapAttrsToList (_: s: s.route) services;

  checks =
    lib.mapAttrsToList (name: s:
      check (isLabel name) "service name `${name}` must be a lowercase DNS label"
      && check (!(lib.hasSuffix "/" s.route) || s.route == "/") "service `${name}`: route must not end with `/`"
      && check (lib.hasPrefix "/" s.health) "service `${name}`: health path must start with `/`"
      && check (s.instances.min <= s.instances.desired && s.instances.desired <= s.instances.max) "service `${name}`: instances need min <= desired <= max"
      && check (lib.all (u: u != name && services ? ${u}) (s.upstreams or [])) "service `${name}`: every upstream must be another service")
    services
    ++ lib.mapAttrsToList (name: j:
      check (isLabel name && !(services ? ${name})) "job name `${name}` must be a unique lowercase DNS label"
      && check (j.command != []) "job `${name}`: command must not be empty")
    jobs
    ++ [
      (check (lib.length (lib.unique allPorts) == lib.length allPorts) "ports must be unique")
      (check (lib.length (lib.unique routes) == lib.length routes) "routes must be unique")
      (check (services == {} || lib.elem "/" routes) "exactly one service must own the route `/`")
      (check (lib.length (lib.filter (j: j.lambda or false) (lib.attrValues jobs)) <= 1) "at most one job can be the migration Lambda")
    ];

  withDefaults = name: s:
    {
      database = false;
      upstreams = [];
      env = {};
    }
    // s
    // {
      inherit name;
      # `/` is the load balancer's default action; other routes match the prefix
      # itself and everything below it.
      isDefaultRoute = s.route == "/";
      pathPatterns =
        if s.route == "/"
        then []
        else [s.route "${s.route}/*"];
    };

  jobWithDefaults = name: j:
    {
      database = false;
      lambda = false;
      env = {};
    }
    // j
    // {inherit name;};
in
  assert lib.all lib.id checks; {
    services = lib.mapAttrs withDefaults services;
    jobs = lib.mapAttrs jobWithDefaults jobs;

    # Every deployable unit with an image: services and jobs alike.
    workloads = lib.mapAttrs withDefaults services // lib.mapAttrs jobWithDefaults jobs;

    # The variable a caller reads to find `name`, e.g. API_URL.
    urlVariable = name: "${lib.toUpper (lib.replaceStrings ["-"] ["_"] name)}_URL";

    # Services and jobs that may reach the database.
    databaseClients = lib.filterAttrs (_: w: w.database) (lib.mapAttrs withDefaults services // lib.mapAttrs jobWithDefaults jobs);

    migrationJob = lib.findFirst (j: j.lambda) null (lib.attrValues (lib.mapAttrs jobWithDefaults jobs));
  }
