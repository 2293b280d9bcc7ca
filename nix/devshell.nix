# `nix develop`: the pinned Rust toolchain (crane's devShell adds cargo, clippy,
# rustc and rustfmt from it) and every tool the local stack, the tests, CI and
# the deploy apps use.
{
  perSystem = {
    lib,
    pkgs,
    craneLib,
    terraform,
    ...
  }: let
    available = pkg: lib.meta.availableOn pkgs.stdenv.hostPlatform pkg;
  in {
    devShells.default = craneLib.devShell {
      packages = with pkgs;
        [
          # Rust and the database
          sqlx-cli
          cargo-deny
          cargo-nextest
          postgresql_16
          # Deploying
          terraform
          awscli2
          skopeo
          jq
          # Tests: moto for the AWS apply/destroy test, checkov for the plan scan
          (python3.withPackages (ps: [ps.moto] ++ ps.moto.optional-dependencies.server or []))
          checkov
          nodejs
          # Linters
          actionlint
          zizmor
          shellcheck
          alejandra
          deadnix
          statix
        ]
        # Browser tests (fantoccini drives chromedriver).
        ++ lib.filter available [chromium chromedriver];
    };
  };
}
