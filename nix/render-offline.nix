# The renders without a flake: `scripts/render` evaluates this with source
# trees of nixpkgs' lib and terranix given as paths (strings, so nothing is
# copied to the Nix store and evaluation works read-only).
{
  nixpkgsLib,
  terranix,
  catalogFile ? ../services.toml,
}: let
  # Either a nixpkgs(-lib) checkout or its `lib` directory itself.
  lib =
    if builtins.pathExists "${nixpkgsLib}/lib/default.nix"
    then import "${nixpkgsLib}/lib"
    else import nixpkgsLib;
in
  import ./render.nix {inherit lib terranix catalogFile;}
