# The flake's own modules (nix/*.nix), evaluated with real flake-parts,
# terranix and nixpkgs' lib, and the stand-in package set (stand-in-pkgs.nix),
# for crates/flake-tests. The inputs are source trees given as strings, so
# nothing is fetched. nix/pkgs.nix is replaced by `harnessModule` (it imports
# nixpkgs and rust-overlay) and nix/lambda.nix by a stand-in zip (it builds
# with crane over pkgsCross.musl64); everything else is the flake's code.
{
  root,
  nixpkgsLib,
  terranix,
  flakeParts,
  machineJson,
  # The commit `self.rev` names (tests vary it).
  rev ? "0000000000000000000000000000000000000000",
}: let
  # Debian's Nix 2.8 lacks builtins.readFileType (Nix 2.14), which
  # lib.fileset (rust.nix, checks.nix) calls: every file of this evaluation is
  # imported with it supplied from readDir, the same answer for any path that
  # is not `/`. Nothing else of lib is changed.
  scope = {
    builtins =
      builtins
      // {
        readFileType = path: (builtins.readDir (dirOf path)).${baseNameOf path};
      };
    import = scopedImport scope;
  };
  lib = scope.import "${nixpkgsLib}/lib";
  machine = builtins.fromJSON (builtins.readFile machineJson);
  system = machine.system;
  pkgs = scope.import ./stand-in-pkgs.nix {inherit lib machine;};

  flake-parts = (scope.import "${flakeParts}/flake.nix").outputs {
    nixpkgs-lib = {inherit lib;};
  };

  # crane's mkLib: the functions rust.nix, checks.nix and devshell.nix call.
  # Binaries are stand-in scripts named after the crate; cargo's own checks
  # (clippy, fmt, tests, deny, audit) are run by .ci/run, not here.
  craneLib = let
    cargoNotRun = what: args: pkgs.standIn.notRun "${args.pname or "workspace"}-${what}" "crane's ${what} (cargo in the Nix sandbox)";
  in {
    crateNameFromCargoToml = {cargoToml, ...}: let
      toml = lib.importTOML cargoToml;
    in {
      pname = toml.package.name;
      version =
        if lib.isString (toml.package.version or null)
        then toml.package.version
        else "0.1.0";
    };
    buildDepsOnly = cargoNotRun "buildDepsOnly";
    buildPackage = args:
      pkgs.standIn.mkDerivation {
        name = args.pname;
        script = ''
          mkdir -p "$out/bin"
          printf '#!/bin/sh\necho "stand-in for the %s binary"\n' ${args.pname} >"$out/bin/${args.pname}"
          chmod +x "$out/bin/${args.pname}"
        '';
      }
      // {meta.mainProgram = args.meta.mainProgram or args.pname;};
    cargoClippy = cargoNotRun "cargoClippy";
    cargoFmt = cargoNotRun "cargoFmt";
    cargoTest = cargoNotRun "cargoTest";
    cargoAudit = cargoNotRun "cargoAudit";
    # crane's cargoDeny: `cargo --offline deny check bans licenses sources`
    # in the source it is given (crane lib/cargoDeny.nix defaults).
    cargoDeny = args:
      pkgs.runCommand "cargo-deny" {nativeBuildInputs = [pkgs.cargo-deny pkgs.cargo];} ''
        cp -rL --no-preserve=mode ${args.src} source
        cd source
        export CARGO_HOME=${machine.cargoHome}
        cargo --offline deny check bans licenses sources
        touch "$out"
      '';
    devShell = args:
      pkgs.standIn.notRun "dev-shell" "a shell environment (the harness reads its arguments)"
      // {shellArgs = args;};
  };

  harnessModule = {
    perSystem = {lib, ...}: {
      _module.args = {
        inherit pkgs;
        terraform = pkgs.terraform-with-aws;
        rustToolchainFor = _: pkgs.cargo;
        catalog = scope.import (root + "/nix/catalog.nix") {inherit lib;} (root + "/services.toml");
      };
      # nix/lambda.nix's package: a zip holding an empty `bootstrap`.
      packages.migration-lambda = pkgs.runCommand "migrate-lambda.zip" {nativeBuildInputs = [pkgs.zip];} ''
        : >bootstrap
        touch -d @315532800 bootstrap
        zip -X -q "$out" bootstrap
      '';
    };
  };

  inputs = {
    self = {
      outPath = toString root;
      inherit rev;
    };
    nixpkgs = {inherit lib;};
    terranix = {outPath = terranix;};
    crane.mkLib = _: {overrideToolchain = _: craneLib;};
    advisory-db = {outPath = "/nonexistent/advisory-db";};
  };

  flake = flake-parts.lib.mkFlake {inherit inputs;} {
    systems = [system];
    imports = [
      harnessModule
      (root + "/nix/rust.nix")
      (root + "/nix/images.nix")
      (root + "/nix/rendered.nix")
      (root + "/nix/apps.nix")
      (root + "/nix/checks.nix")
      (root + "/nix/devshell.nix")
      (root + "/nix/formatter.nix")
    ];
  };

  drvPaths = value: builtins.attrNames (builtins.getContext value);
in {
  inherit flake;

  # What the harness builds and runs, as JSON.
  summary = {
    checks =
      lib.mapAttrs (_: check: {
        drvPath = check.drvPath;
        notRun = check.standInNotRun or null;
        missingTools = check.missingTools or [];
      })
      flake.checks.${system};
    apps =
      lib.mapAttrs (_: app: {
        inherit (app) program;
        drvPaths = drvPaths app.program;
      })
      flake.apps.${system};
    devShell = let
      args = flake.devShells.${system}.default.shellArgs;
    in {
      packages = map toString args.packages;
      env = lib.filterAttrs (_: lib.isString) (removeAttrs args ["packages"]);
    };
    formatter = {
      program = lib.getExe flake.formatter.${system};
      drvPaths = drvPaths (lib.getExe flake.formatter.${system});
    };
    imageManifest = {
      drvPaths = drvPaths "${flake.packages.${system}.image-manifest}";
      path = "${flake.packages.${system}.image-manifest}";
    };
    images = {
      drvPaths = drvPaths "${flake.packages.${system}.images}";
      path = "${flake.packages.${system}.images}";
    };
  };
}
