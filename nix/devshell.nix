# `nix develop`: the pinned Rust toolchain (crane's devShell adds cargo, clippy,
# rustc and rustfmt from it) and every tool of nix/dev-tools.toml, the one list
# of what the tests, the local stack and the apps run (crates/flake-tests
# checks this shell against it). The exports point the tests at the Nix store
# paths instead of the Debian defaults they fall back to.
{
  perSystem = {
    lib,
    pkgs,
    craneLib,
    terraform,
    ...
  }: let
    tools = (lib.importTOML ./dev-tools.toml).tool;

    # The interpreter with moto's server: python3 on PATH may be the bare one
    # that awscli2 or checkov propagate, so the tests get this one as PYTHON.
    python-with-moto = pkgs.python3.withPackages (ps: [ps.moto] ++ ps.moto.optional-dependencies.server or []);

    ownPackages = {inherit terraform python-with-moto;};
    # `output`: the package's output holding the programs, when not its
    # default one (nixpkgs' prometheus moves promtool to `cli`).
    packageOf = tool: let
      package = ownPackages.${tool.package} or pkgs.${tool.package};
    in
      if tool ? output
      then package.${tool.output}
      else package;
    available = tool:
      tool.optional or "" != "platform" || lib.meta.availableOn pkgs.stdenv.hostPlatform (packageOf tool);

    # CHROMIUM / CHROMEDRIVER only where nixpkgs builds them.
    browserExports = lib.optionalAttrs (lib.meta.availableOn pkgs.stdenv.hostPlatform pkgs.chromium) {
      CHROMIUM = lib.getExe pkgs.chromium;
      CHROMEDRIVER = lib.getExe' pkgs.chromedriver "chromedriver";
    };
  in {
    devShells.default = craneLib.devShell ({
        packages = map packageOf (lib.filter available tools);
        # nixpkgs' terraform.withPlugins links each provider under the
        # wrapper's libexec/terraform-providers/<host>/<namespace>/<type>/<version>/<os_arch>,
        # the "unpacked" filesystem-mirror layout the infra tests read.
        TF_PLUGIN_MIRROR = "${terraform}/libexec/terraform-providers";
        PYTHON = lib.getExe' python-with-moto "python3";
      }
      // browserExports);
  };
}
