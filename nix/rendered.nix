# The committed renders (infra/<env>/main.tf.json, northflank/template.json) as
# derivations. They come from nix/render.nix, the same function the offline
# `scripts/render` calls, written the canonical way (`jq -S .`).
#
# Packages: `rendered` (every file, at its repository path), `terraform-<env>`
# (a directory holding that environment's main.tf.json), `northflank-template`.
# Module argument: `rendered` (for apps and checks).
{inputs, ...}: {
  perSystem = {
    lib,
    pkgs,
    ...
  }: let
    renders = import ./render.nix {
      inherit lib;
      inherit (inputs) terranix;
    };

    writeCanonicalJSON = path: value:
      pkgs.runCommand (baseNameOf path) {
        nativeBuildInputs = [pkgs.jq];
        json = builtins.toJSON value;
        passAsFile = ["json"];
      } ''
        jq -S . "$jsonPath" > "$out"
      '';

    files = lib.mapAttrs writeCanonicalJSON renders;

    rendered = pkgs.linkFarm "rendered" (lib.mapAttrsToList (name: path: {inherit name path;}) files);

    # production, staging, bootstrap: whatever render.nix writes under infra/.
    environments = lib.concatMap (path: let
      m = builtins.match "infra/([^/]+)/main[.]tf[.]json" path;
    in
      lib.optional (m != null) (lib.head m)) (lib.attrNames renders);
  in {
    _module.args.rendered = {
      inherit renders files environments;
      all = rendered;
    };

    packages =
      {
        inherit rendered;
        northflank-template = files."northflank/template.json";
      }
      // lib.listToAttrs (map (env:
        lib.nameValuePair "terraform-${env}" (pkgs.linkFarm "terraform-${env}" [
          {
            name = "main.tf.json";
            path = files."infra/${env}/main.tf.json";
          }
        ]))
      environments);
  };
}
