# Every committed render, as `"relative/path.json" = <JSON value>`: the
# Terraform JSON of each AWS environment and of the bootstrap, and the
# Northflank template. Pure functions of the catalog and the Nix modules;
# per-deploy values stay Terraform variables / template arguments.
#
# Needs only nixpkgs' `lib` and terranix (a source tree or flake input), so the
# flake and the offline command (render-offline.nix) call the same function.
{
  lib,
  terranix,
  catalogFile ? ../services.toml,
}: let
  catalog = import ./catalog.nix {inherit lib;} catalogFile;

  # terranix core only uses `pkgs.lib`.
  terraformJson = modules:
    (import "${terranix}/core/default.nix" {
      pkgs = {inherit lib;};
      extraArgs = {inherit catalog;};
      inherit modules;
      strip_nulls = true;
    })
    .config;

  awsEnvironment = env: terraformJson [./aws ./aws/environments/${env}.nix];
in
  {
    "infra/production/main.tf.json" = awsEnvironment "production";
    "infra/staging/main.tf.json" = awsEnvironment "staging";
  }
  # Written by other parts of the repo; included as soon as they exist.
  // lib.optionalAttrs (builtins.pathExists ./bootstrap/default.nix) {
    "infra/bootstrap/main.tf.json" = terraformJson [./bootstrap];
  }
  // lib.optionalAttrs (builtins.pathExists ./northflank/template.nix) {
    "northflank/template.json" = import ./northflank/template.nix {inherit lib catalog;};
  }
