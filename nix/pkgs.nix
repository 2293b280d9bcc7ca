# The package set every other module uses (one nixpkgs, with rust-overlay), the
# pinned Rust toolchain and the service catalog, as module arguments.
{inputs, ...}: {
  perSystem = {
    lib,
    system,
    ...
  }: {
    _module.args = rec {
      pkgs = import inputs.nixpkgs {
        inherit system;
        overlays = [inputs.rust-overlay.overlays.default];
        # Terraform is BSL-licensed; allow exactly that unfree package.
        config.allowUnfreePredicate = pkg: lib.getName pkg == "terraform";
      };

      # Terraform with the AWS provider from nixpkgs: `terraform init` finds it
      # locally, so validate works in the build sandbox and deploys download nothing.
      terraform = pkgs.terraform.withPlugins (p: [(p.hashicorp_aws or p.aws)]);

      # rust-toolchain.toml is the single source of the compiler version, for
      # cargo outside Nix (rustup) and inside it (rust-overlay).
      rustToolchainFor = p: p.rust-bin.fromRustupToolchainFile ../rust-toolchain.toml;

      catalog = import ./catalog.nix {inherit lib;} ../services.toml;
    };
  };
}
