# Adding a throwaway service to the catalog adds exactly that service to the
# Northflank template: its argument and its rollout, nothing else changes.
#
#   nix-instantiate --read-write-mode --eval --strict \
#     -E 'import ./nix/northflank/tests.nix { lib = import <nixpkgs/lib>; }'
#
# evaluates to `true`, or throws naming the failed tests. (`--read-write-mode`
# because the extended catalog is written to the store with builtins.toFile.)
{
  lib,
  catalogFile ? ../../services.toml,
}: let
  render = file:
    import ./template.nix {
      inherit lib;
      catalog = import ../catalog.nix {inherit lib;} file;
    };

  throwaway = ''

    [services.throwaway]
    crate = "throwaway"
    port = 3999
    metrics_port = 9199
    route = "/throwaway"
    health = "/throwaway/health"
    cpu = 512
    memory = 1024
    instances = { desired = 2, min = 2, max = 2 }
    upstreams = ["api"]
  '';

  before = render catalogFile;
  after = render (builtins.toFile "services.toml" (builtins.readFile catalogFile + throwaway));

  # Every node of a template, workflows included, without their steps.
  nodes = node:
    [(lib.recursiveUpdate node {spec.steps = null;})]
    ++ lib.concatMap nodes (
      if node.kind == "Workflow"
      then node.spec.steps
      else []
    );

  subtract = xs: ys: lib.filter (x: !(lib.elem x ys)) xs;
  added = subtract (nodes after.spec) (nodes before.spec);
  removed = subtract (nodes before.spec) (nodes after.spec);
  # Workflows compare without their steps, so the parallel workflow of the
  # services counts as unchanged; its new step is listed on its own.
  summary = map (n: "${n.kind}/${n.ref}") added;

  service = lib.findFirst (n: n.kind == "DeploymentService" && n.ref == "throwaway") null added;

  failures = lib.runTests {
    testAddsOnlyItsNodes = {
      expr = summary;
      expected = ["Workflow/throwaway-rollout" "DeploymentService/throwaway" "Condition/throwaway-running"];
    };
    testRemovesNothing = {
      expr = removed;
      expected = [];
    };
    testAddsOnlyItsImageArgument = {
      expr = subtract (lib.attrNames after.arguments) (lib.attrNames before.arguments);
      expected = ["THROWAWAY_IMAGE"];
    };
    testKeepsTheRest = {
      expr = removeAttrs after ["spec" "arguments"] == removeAttrs before ["spec" "arguments"];
      expected = true;
    };
    testServiceFromTheCatalog = {
      expr = {
        inherit (service.spec.deployment) instances external;
        inherit (service.spec.billing) deploymentPlan;
        ports = map (p: p.internalPort) service.spec.ports;
        health = lib.unique (map (c: c.path) service.spec.healthChecks);
        apiUrl = service.spec.runtimeEnvironment.API_URL;
        scales = service.spec.autoscaling.horizontal.enabled;
      };
      expected = {
        instances = 2;
        external = {
          imagePath = "\${args.THROWAWAY_IMAGE}";
          credentials = "\${args.REGISTRY_CREDENTIALS}";
        };
        deploymentPlan = "nf-compute-50";
        ports = [3999 9199];
        health = ["/throwaway/health"];
        apiUrl = "http://api:3000";
        scales = false;
      };
    };
    testNotADatabaseClient = {
      expr = (lib.findFirst (n: n.kind == "SecretGroup") null (nodes after.spec)).spec.restrictions.nfObjects;
      expected = (lib.findFirst (n: n.kind == "SecretGroup") null (nodes before.spec)).spec.restrictions.nfObjects;
    };
  };
in
  if failures == []
  then true
  else throw "nix/northflank/tests.nix failed: ${builtins.toJSON failures}"
