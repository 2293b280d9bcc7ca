# `nix flake check`. Rust checks follow crane's quick-start-workspace example
# (clippy, rustfmt, tests, cargo-deny sharing the workspace's cargoArtifacts).
#
# The test suite here is the part that needs only PostgreSQL, which runs inside
# the build sandbox (crates/test-postgres starts a throwaway server), and moto
# on loopback (the api's credential-rotation tests). Browser
# tests (chromium), Terraform plan/moto/checkov tests (crates/infra-tests) and
# anything else that needs tools or services outside the sandbox run from
# `.ci/run` instead.
{
  self,
  inputs,
  ...
}: {
  perSystem = {
    config,
    lib,
    pkgs,
    craneLib,
    rustWorkspace,
    rendered,
    terraform,
    catalog,
    ...
  }: let
    inherit (rustWorkspace) commonArgs cargoArtifacts crateNames;
    root = ../.;

    sandboxTested = lib.filter (name: lib.elem name crateNames) ["catalog" "service-kit" "api" "migrate" "web"];

    # Runs `script` in a copy of `src`; the check passes when the script does.
    runIn = name: src: nativeBuildInputs: script:
      pkgs.runCommand name {inherit nativeBuildInputs;} ''
        cp -rL --no-preserve=mode ${src} source
        cd source
        export HOME=$TMPDIR
        ${script}
        touch $out
      '';

    nixFiles = lib.fileset.toSource {
      inherit root;
      fileset = lib.fileset.fileFilter (file: file.hasExt "nix") root;
    };

    # Throwaway-service render tests from the engineers who own the renders:
    # each file is a function taking any of { lib, pkgs, terranix } and
    # returning `lib.runTests`'s list of failures ([] = pass), an attribute set
    # of `{ expr; expected; }` tests, or `true`.
    testFiles =
      lib.optionals (builtins.pathExists ./tests) (
        map (name: ./tests + "/${name}") (lib.filter (lib.hasSuffix ".nix") (lib.attrNames (builtins.readDir ./tests)))
      )
      ++ lib.optional (builtins.pathExists ./northflank/tests.nix) ./northflank/tests.nix;

    runNixTests = file: let
      fn = import file;
      value =
        if lib.isFunction fn
        then
          fn (builtins.intersectAttrs (lib.functionArgs fn) {
            inherit lib pkgs;
            inherit (inputs) terranix;
          })
        else fn;
      failures =
        if lib.isAttrs value
        then lib.runTests value
        else if lib.isBool value
        then lib.optional (!value) "returned false"
        else value;
      name = "nix-tests-${lib.removeSuffix ".nix" (baseNameOf (dirOf file))}-${lib.removeSuffix ".nix" (baseNameOf file)}";
    in
      lib.nameValuePair name (pkgs.runCommand name {
          failures = builtins.toJSON failures;
          passAsFile = ["failures"];
        } (
          if failures == []
          then "touch $out"
          else ''
            echo "${toString file}: failing tests:" >&2
            cat "$failuresPath" >&2
            exit 1
          ''
        ));
  in {
    checks =
      # Build every shipped crate, the Lambda zip, the image scripts and the renders.
      lib.filterAttrs (name: _: lib.elem name crateNames || name == "migration-lambda" || name == "images" || name == "rendered") config.packages
      // {
        clippy = craneLib.cargoClippy (commonArgs
          // {
            inherit cargoArtifacts;
            cargoClippyExtraArgs = "--all-targets -- --deny warnings";
          });

        rustfmt = craneLib.cargoFmt {inherit (commonArgs) src pname version;};

        tests = craneLib.cargoTest (commonArgs
          // {
            inherit cargoArtifacts;
            cargoTestExtraArgs = lib.concatMapStringsSep " " (name: "-p ${name}") sandboxTested;
            # moto: Secrets Manager on loopback for the api's credential-rotation tests.
            nativeBuildInputs = [pkgs.postgresql_16 (pkgs.python3.withPackages (ps: [ps.moto] ++ ps.moto.optional-dependencies.server or []))];
          });

        # RustSec advisories from the pinned advisory-db input, so the check
        # runs in the sandbox (crane's quick-start-workspace `cargoAudit`).
        cargo-audit = craneLib.cargoAudit {
          inherit (commonArgs) src;
          inherit (inputs) advisory-db;
        };

        # bans, licenses and sources (crane's default `cargoDenyChecks`).
        cargo-deny = craneLib.cargoDeny (commonArgs
          // {
            src = lib.fileset.toSource {
              inherit root;
              fileset = lib.fileset.union (rustWorkspace.filesetFor (map (name: root + "/crates/${name}") crateNames)) (root + "/deny.toml");
            };
          });

        nix-lint = runIn "nix-lint" nixFiles [pkgs.alejandra pkgs.deadnix pkgs.statix] ''
          alejandra --check .
          deadnix --fail .
          statix check .
        '';

        # The committed renders equal a fresh render (`scripts/render` rewrites them).
        rendered-up-to-date = pkgs.runCommand "rendered-up-to-date" {} ''
          status=0
          ${lib.concatMapStrings (path: ''
              if ! diff -u ${self}/${path} ${rendered.files.${path}}; then
                echo "${path} differs from a fresh render: run scripts/render and commit the result" >&2
                status=1
              fi
            '')
            (lib.attrNames rendered.files)}
          if [ "$status" != 0 ]; then exit 1; fi
          touch $out
        '';

        # What goes into the images (the workloads' binaries and their runtime
        # closures, CA certificates) holds no shell.
        images-without-shell =
          pkgs.runCommand "images-without-shell" {
            closure = pkgs.writeClosure (
              [pkgs.dockerTools.caCertificates]
              ++ lib.mapAttrsToList (_: w: config.packages.${w.crate}) catalog.workloads
            );
          } ''
            if grep -E -- '-(bash|bash-interactive|dash|busybox|coreutils)-[0-9]' "$closure"; then
              echo "an image contains a shell or coreutils" >&2
              exit 1
            fi
            touch $out
          '';
      }
      // lib.listToAttrs (map (env:
        lib.nameValuePair "terraform-validate-${env}" (
          runIn "terraform-validate-${env}" config.packages."terraform-${env}" [terraform] ''
            export TF_IN_AUTOMATION=1
            terraform init -backend=false -input=false
            terraform validate
          ''
        ))
      rendered.environments)
      // lib.optionalAttrs (builtins.pathExists (root + "/.github/workflows")) {
        workflow-lint =
          runIn "workflow-lint" (lib.fileset.toSource {
            inherit root;
            fileset = root + "/.github";
          }) [pkgs.actionlint pkgs.shellcheck pkgs.zizmor] ''
            # actionlint's usage (docs/usage.md): given files it lints exactly
            # those; given none it looks for `.github/workflows` next to a
            # `.git` upwards, and this copy has no `.git` ("no project was
            # found", exit 3). shellcheck on PATH checks the `run:` scripts.
            actionlint .github/workflows/*.yml
            zizmor --offline .github/workflows
          '';
      }
      // lib.listToAttrs (map runNixTests testFiles);
  };
}
