# The Rust workspace, built with crane (docs: examples/quick-start-workspace):
# `buildDepsOnly` once for the whole workspace, its `cargoArtifacts` shared by
# every crate, and each crate built from its own source fileset so a change to
# one crate rebuilds only what depends on it.
#
# Feature unification: `-p <crate>` resolves features for that crate's graph
# alone, so some dependencies get other features than in the workspace-wide
# `buildDepsOnly` and recompile in the crate's build. Measured with
# `cargo tree -e normal,build -f '{p} {f}' -p <crate>` against `--workspace`
# (Cargo.lock of 2026-11): api 7 packages differ (syn, hyper, hyper-util,
# tower, base64, ...), web 21, migrate 5, xtask 15, northflank 17; each is
# recompiled with its dependents. Kept on purpose: a per-crate derivation is
# what keeps an image tag per service (a change to web does not re-tag, re-push
# and roll api). crane's remedy that keeps both is cargo-hakari (a
# workspace-hack crate every crate depends on, as in quick-start-workspace);
# it is the next step, not taken here because it edits every crate's manifest.
#
# Module arguments for the other modules: `craneLib`, `rustWorkspace`.
# Packages: one per workspace crate that has a binary the flake ships
# (the catalog's workloads, `xtask` for `nix run .#dev`, `northflank`).
{inputs, ...}: {
  perSystem = {
    lib,
    pkgs,
    catalog,
    rustToolchainFor,
    ...
  }: let
    root = ../.;
    craneLib = (inputs.crane.mkLib pkgs).overrideToolchain rustToolchainFor;

    workspaceToml = lib.importTOML (root + "/Cargo.toml");

    # Workspace crates: directories under crates/ that have a Cargo.toml.
    crateNames = lib.attrNames (lib.filterAttrs (
        name: type: type == "directory" && builtins.pathExists (root + "/crates/${name}/Cargo.toml")
      )
      (builtins.readDir (root + "/crates")));

    # Paths of the workspace crates a crate depends on (normal, dev and build
    # dependencies, directly or through `workspace = true`).
    pathDependencies = dir: let
      toml = lib.importTOML (dir + "/Cargo.toml");
      deps = (toml.dependencies or {}) // (toml.dev-dependencies or {}) // (toml.build-dependencies or {});
      pathOf = name: spec:
        if !(lib.isAttrs spec)
        then null
        else if spec.workspace or false
        then
          if workspaceToml.workspace.dependencies.${name} ? path
          then root + "/${workspaceToml.workspace.dependencies.${name}.path}"
          else null
        else if spec ? path
        then dir + "/${spec.path}"
        else null;
    in
      lib.filter (p: p != null) (lib.mapAttrsToList pathOf deps);

    # A crate and every workspace crate it needs, transitively.
    crateClosure = name:
      map (item: item.key) (builtins.genericClosure {
        startSet = [{key = root + "/crates/${name}";}];
        operator = item: map (key: {inherit key;}) (pathDependencies item.key);
      });

    usesDependency = dep: dirs:
      lib.any (dir: let
        toml = lib.importTOML (dir + "/Cargo.toml");
      in
        lib.any (section: (toml.${section} or {}) ? ${dep}) ["dependencies" "dev-dependencies" "build-dependencies"])
      dirs;

    # The files a set of crates needs: the workspace manifests, the crates'
    # whole directories (sources, askama templates/, static files, test data),
    # and the shared files they read at compile or test time.
    filesetFor = dirs:
      lib.fileset.unions ([
          (root + "/Cargo.toml")
          (root + "/Cargo.lock")
          (lib.fileset.maybeMissing (root + "/.cargo/config.toml"))
        ]
        ++ dirs
        # sqlx: `migrate!` embeds migrations/, `query!` reads .sqlx/ offline.
        ++ lib.optionals (usesDependency "sqlx" dirs) [
          (lib.fileset.maybeMissing (root + "/migrations"))
          (lib.fileset.maybeMissing (root + "/.sqlx"))
        ]
        # The catalog crate reads services.toml at the workspace root.
        ++ lib.optional (lib.elem (root + "/crates/catalog") dirs) (root + "/services.toml"));

    sourceFor = dirs:
      lib.fileset.toSource {
        inherit root;
        fileset = filesetFor dirs;
      };

    allCrateDirs = map (name: root + "/crates/${name}") crateNames;

    commonArgs = {
      src = sourceFor allCrateDirs;
      pname = "workspace";
      version = workspaceToml.workspace.package.version or "0.1.0";
      strictDeps = true;
      # sqlx macros check queries against .sqlx/ instead of a live database.
      SQLX_OFFLINE = "true";
    };

    # Dependencies of the whole workspace, compiled once.
    cargoArtifacts = craneLib.buildDepsOnly commonArgs;

    buildCrate = name:
      craneLib.buildPackage (commonArgs
        // {
          inherit cargoArtifacts;
          inherit (craneLib.crateNameFromCargoToml {cargoToml = root + "/crates/${name}/Cargo.toml";}) pname version;
          src = sourceFor (crateClosure name);
          cargoExtraArgs = "-p ${name}";
          # Tests run once for the workspace, in checks (nix/checks.nix).
          doCheck = false;
          meta.mainProgram = name;
        });

    shipped = lib.unique (lib.mapAttrsToList (_: w: w.crate) catalog.workloads ++ ["xtask" "northflank"]);
  in {
    _module.args = {
      inherit craneLib;
      rustWorkspace = {
        inherit crateNames commonArgs cargoArtifacts filesetFor sourceFor crateClosure buildCrate;
      };
    };

    packages = lib.genAttrs (lib.filter (name: lib.elem name crateNames) shipped) buildCrate;
  };
}
