# One OCI image per catalog workload (dockerTools.streamLayeredImage): the
# binary and its runtime closure, CA certificates, a numeric non-root user, no
# shell or package manager. The tag is the image derivation's own `imageTag`
# (a hash of its configuration and contents), so a tag names exactly one build.
#
# Nothing that changes per commit goes into an image: its configuration is
# hashed into the tag, so a revision label would re-tag, re-push and roll every
# service on every commit. The commit is kept beside the images instead
# (`revision` in the `images` directory), which no tag depends on.
#
# Packages: `image-<name>` (a script that streams the image as a docker
# archive), `image-manifest` (JSON: name -> tag, read by the deploy apps) and
# `images` (all of them, the manifest and the revision in one directory).
{self, ...}: {
  perSystem = {
    config,
    lib,
    pkgs,
    catalog,
    ...
  }: let
    revision = self.rev or self.dirtyRev or "dirty";

    binaryOf = w:
      config.packages.${w.crate} or (throw "workload `${w.name}`: crates/${w.crate} is not a workspace crate");

    # The RDS certificate authorities at the path the task definitions give as
    # PGSSLROOTCERT (nix/aws/database.nix, `caBundle.imagePath`): the services
    # authenticate the database server (`verify-full`). Laid out like
    # dockerTools.caCertificates, whose `contents` entries are linked into /.
    rdsCaBundle = pkgs.runCommand "rds-ca-bundle" {} ''
      install -D -m 0444 ${./aws/rds-ca-bundle.pem} "$out/etc/ssl/certs/rds-ca-bundle.pem"
    '';

    image = w: let
      bin = binaryOf w;
      # Services run their binary; jobs their catalog `command`.
      argv = w.command or [w.crate];
      isService = w ? port;
    in
      pkgs.dockerTools.streamLayeredImage {
        inherit (w) name;
        # /etc/ssl/certs/ca-bundle.crt and friends, and the RDS bundle; nothing else.
        contents = [pkgs.dockerTools.caCertificates rdsCaBundle];
        # An empty /tmp with the usual mode, where a task could mount a
        # writable volume. Under ECS's read-only root filesystem it is not
        # writable by itself; the workloads write no files.
        extraCommands = "mkdir -m 1777 tmp";
        config = {
          # The same unprivileged uid the ECS task definitions run as (nix/aws/containers.nix).
          User = "65534:65534";
          Entrypoint = ["${bin}/bin/${lib.head argv}"] ++ lib.tail argv;
          Env =
            [
              "SSL_CERT_FILE=/etc/ssl/certs/ca-bundle.crt"
              "LOG_FORMAT=json"
            ]
            ++ lib.optionals isService [
              "PORT=${toString w.port}"
              "METRICS_PORT=${toString w.metrics_port}"
            ];
          ExposedPorts = lib.optionalAttrs isService {
            "${toString w.port}/tcp" = {};
            "${toString w.metrics_port}/tcp" = {};
          };
          Labels = {
            "org.opencontainers.image.title" = w.name;
            "org.opencontainers.image.licenses" = "MIT";
          };
        };
      };

    images = lib.mapAttrs (_: image) catalog.workloads;

    manifest = pkgs.writeText "image-manifest.json" (builtins.toJSON (lib.mapAttrs (_: i: i.imageTag) images));
  in {
    _module.args.images = images;

    packages =
      lib.mapAttrs' (name: lib.nameValuePair "image-${name}") images
      // {
        image-manifest = manifest;
        images = pkgs.linkFarm "images" (
          lib.mapAttrsToList (name: path: {inherit name path;}) images
          ++ [
            {
              name = "manifest.json";
              path = manifest;
            }
            {
              name = "revision";
              path = pkgs.writeText "revision" revision;
            }
          ]
        );
      };
  };
}
