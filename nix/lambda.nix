# The migration Lambda (`provided.al2023`): the catalog's `lambda = true` job's
# binary, statically linked against musl, as `bootstrap` in a zip.
#
# Because this workspace compiles C (ring, aws-lc-sys), the crate is built
# with crane over `pkgsCross.musl64` (crane's cross-rust-overlay example):
# crane's mkCrossToolchainEnv then sets CARGO_BUILD_TARGET to the host
# platform's rustcTarget and points cargo's linker and the cc crate at the musl
# C toolchain, and musl targets link statically by default (`+crt-static`), so
# neither is repeated here; the zip step below checks the result is static.
# rust-overlay adds the musl standard library (rust-toolchain.toml lists it).
#
# Package (x86_64-linux only): `migration-lambda`, the zip file itself.
{inputs, ...}: {
  perSystem = {
    lib,
    pkgs,
    system,
    catalog,
    rustToolchainFor,
    rustWorkspace,
    ...
  }: let
    job = catalog.migrationJob;
    pkgsMusl = pkgs.pkgsCross.musl64;
    craneLibMusl = (inputs.crane.mkLib pkgsMusl).overrideToolchain rustToolchainFor;

    muslArgs = {
      src = rustWorkspace.sourceFor (rustWorkspace.crateClosure job.crate);
      inherit (craneLibMusl.crateNameFromCargoToml {cargoToml = ../crates/${job.crate}/Cargo.toml;}) pname version;
      strictDeps = true;
      cargoExtraArgs = "-p ${job.crate}";
      SQLX_OFFLINE = "true";
      doCheck = false;
    };

    binary = craneLibMusl.buildPackage (muslArgs
      // {
        # A separate dependency build: it is for another target.
        cargoArtifacts = craneLibMusl.buildDepsOnly muslArgs;
      });

    zip =
      pkgs.runCommand "${job.name}-lambda.zip" {
        nativeBuildInputs = [pkgs.zip pkgs.file];
      } ''
        install -m 0755 ${binary}/bin/${lib.head job.command} bootstrap
        # `file` says "statically linked", or "static-pie linked" for a static PIE.
        file bootstrap | grep -Eq 'statically linked|static-pie linked' || {
          echo "bootstrap is not statically linked: $(file bootstrap)" >&2
          exit 1
        }
        # The RDS certificate authorities, unpacked at /var/task/rds-ca-bundle.pem:
        # the function's PGSSLROOTCERT (nix/aws/database.nix, `caBundle.lambdaPath`).
        install -m 0444 ${./aws/rds-ca-bundle.pem} rds-ca-bundle.pem
        # Reproducible: fixed timestamps, no extra attributes.
        touch -d @315532800 bootstrap rds-ca-bundle.pem
        zip -X -q "$out" bootstrap rds-ca-bundle.pem
      '';
  in {
    packages = lib.optionalAttrs (job != null && system == "x86_64-linux") {
      migration-lambda = zip;
    };
  };
}
