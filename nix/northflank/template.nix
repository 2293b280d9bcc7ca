# The Northflank template (API v1.2), generated from the service catalog.
#
# One sequential workflow in the new project: the database, its restricted
# secret group, the jobs, the migration run (awaited), then every service in
# parallel. Images and the registry credential are template arguments, so this
# file changes only when the infrastructure does.
#
# Node and field names follow https://northflank.com/docs/v1/application/infrastructure-as-code/template-nodes
# and the request types of @northflank/js-client (checked by tools/northflank-types).
{
  lib,
  catalog,
}: let
  plans = import ./plans.nix {inherit lib;};

  projectName = "iac-experiment";
  databaseRef = "database";

  # `${args.NAME}` / `${refs.NODE.id}` are resolved by Northflank when the template runs.
  arg = name: "\${args.${name}}";
  refId = ref: "\${refs.${ref}.id}";

  imageArgument = name: "${lib.toUpper (lib.replaceStrings ["-"] ["_"] name)}_IMAGE";

  # Refs of the fixed nodes; a workload of the same name would shadow one.
  reserved = ["template" "project" "resources" databaseRef "connection" "jobs" "database-running" "migration" "services"];
  clashes = lib.filter (name: lib.elem name reserved) (lib.attrNames catalog.workloads);

  # Pulled from GHCR with a registry credential; Northflank never builds.
  external = name: {
    imagePath = arg (imageArgument name);
    credentials = arg "REGISTRY_CREDENTIALS";
  };

  plan = workload: plans.nearest workload.cpu workload.memory;

  # Every node has a `ref`: Northflank names it in run reports, and
  # `northflank plan` matches steps by it.
  workflow = ref: type: steps: {
    kind = "Workflow";
    inherit ref;
    spec = {inherit type steps;};
  };

  database = {
    kind = "Addon";
    ref = databaseRef;
    spec = {
      name = "database";
      description = "PostgreSQL of the suite; only the database clients of the catalog get its credentials";
      type = "postgresql";
      version = "16-latest";
      # No `storageClass`: the current reference marks it configurable only behind
      # a feature flag (its example says `nvme`, older pages `ssd`), so the platform
      # default applies.
      billing = {
        deploymentPlan = "nf-compute-20";
        storage = 4096;
        replicas = 1;
      };
      tlsEnabled = true;
      externalAccessEnabled = false;
      backupSchedules = [
        {
          scheduling = {
            interval = "daily";
            minute = [0];
            hour = [3];
          };
          backupType = "dump";
          retentionTime = 7;
        }
      ];
    };
  };

  # The connection, in the variable names the binaries read, for the database
  # clients of the catalog only.
  connection = {
    kind = "SecretGroup";
    ref = "connection";
    spec = {
      name = "database-connection";
      description = "PostgreSQL connection for the database clients of the catalog only";
      type = "secret";
      secretType = "environment";
      priority = 10;
      restrictions = {
        restricted = true;
        nfObjects =
          lib.mapAttrsToList (name: _: {
            id = name;
            type = "service";
          })
          (lib.filterAttrs (name: _: catalog.services ? ${name}) catalog.databaseClients)
          ++ lib.mapAttrsToList (name: _: {
            id = name;
            type = "job";
          })
          (lib.filterAttrs (name: _: catalog.jobs ? ${name}) catalog.databaseClients);
        tags = [];
      };
      secrets.variables.PGSSLMODE = "require";
      addonDependencies = [
        {
          addonId = refId databaseRef;
          keys =
            lib.mapAttrsToList (keyName: alias: {
              inherit keyName;
              aliases = [alias];
            }) {
              HOST = "PGHOST";
              PORT = "PGPORT";
              DATABASE = "PGDATABASE";
              USERNAME = "PGUSER";
              PASSWORD = "PGPASSWORD";
            };
        }
      ];
    };
  };

  baseEnvironment = workload: workload.env // {LOG_FORMAT = "json";};

  job = name: j: {
    kind = "ManualJob";
    ref = name;
    spec = {
      inherit name;
      description = "Job `${name}` of the catalog";
      billing.deploymentPlan = plan j;
      deployment = {
        external = external name;
        # The image's entrypoint already is the catalog `command` (nix/images.nix).
        docker.configType = "default";
      };
      runtimeEnvironment = baseEnvironment j;
      backoffLimit = 0;
      activeDeadlineSeconds = 600;
      runOnSourceChange = "never";
    };
  };

  # Waits for the run to finish; a failed migration fails the template run
  # before any service rolls.
  migration = {
    kind = "JobRun";
    ref = "migration";
    condition = "success";
    spec.jobId = refId catalog.migrationJob.name;
  };

  running = ref: kind: data: {
    kind = "Condition";
    inherit ref;
    spec = {
      inherit kind;
      spec = {
        inherit data;
        type = "running";
      };
    };
  };

  probe = s: type: {
    inherit type;
    protocol = "HTTP";
    path = s.health;
    inherit (s) port;
    initialDelaySeconds = 5;
    periodSeconds = 10;
    timeoutSeconds = 3;
    failureThreshold = 3;
    successThreshold = 1;
  };

  service = name: s: {
    kind = "DeploymentService";
    ref = name;
    spec = {
      inherit name;
      description = "Service `${name}` of the catalog";
      billing.deploymentPlan = plan s;
      deployment = {
        instances = s.instances.desired;
        external = external name;
        docker.configType = "default";
      };
      ports = [
        {
          name = "http";
          internalPort = s.port;
          public = true;
          protocol = "HTTP";
        }
        {
          name = "metrics";
          internalPort = s.metrics_port;
          public = false;
          protocol = "HTTP";
        }
      ];
      healthChecks = [(probe s "readinessProbe") (probe s "livenessProbe")];
      runtimeEnvironment =
        baseEnvironment s
        // {
          PORT = toString s.port;
          METRICS_PORT = toString s.metrics_port;
        }
        # Northflank's internal address of a service is <service-name>:<port>.
        // lib.listToAttrs (map (u: {
            name = catalog.urlVariable u;
            value = "http://${u}:${toString catalog.services.${u}.port}";
          })
          s.upstreams);
      autoscaling.horizontal = {
        enabled = s.instances.min < s.instances.max;
        minReplicas = s.instances.min;
        maxReplicas = s.instances.max;
        cpu = {
          enabled = true;
          thresholdPercentage = 70;
        };
      };
    };
  };

  # Each service, then a wait until it runs, so the template run fails when a
  # rollout does.
  rollout = name: s:
    workflow "${name}-rollout" "sequential" [
      (service name s)
      (running "${name}-running" "Service" {serviceId = refId name;})
    ];
in
  assert lib.assertMsg (clashes == []) "nix/northflank/template.nix: workload names ${toString clashes} clash with node refs of the template"; {
    apiVersion = "v1.2";
    name = projectName;
    description = "Generated from services.toml by nix/northflank/template.nix; do not edit by hand";
    options = {
      autorun = false;
      concurrencyPolicy = "queue";
    };
    arguments =
      lib.mapAttrs' (name: _: lib.nameValuePair (imageArgument name) "") catalog.workloads
      // {REGISTRY_CREDENTIALS = "";};
    spec = workflow "template" "sequential" [
      {
        kind = "Project";
        ref = "project";
        spec = {
          name = projectName;
          description = "The web and api services, their database and its migrations";
          region = "us-central";
          networking.allowedIngressProjects = [];
        };
      }
      {
        kind = "Workflow";
        ref = "resources";
        spec = {
          type = "sequential";
          context.projectId = refId "project";
          steps =
            [
              database
              connection
              (workflow "jobs" "parallel" (lib.mapAttrsToList job catalog.jobs))
              (running "database-running" "Addon" {addonId = refId databaseRef;})
            ]
            ++ lib.optional (catalog.migrationJob != null) migration
            ++ [(workflow "services" "parallel" (lib.mapAttrsToList rollout catalog.services))];
        };
      }
    ];
  }
