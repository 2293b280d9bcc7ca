{
  description = "Rust services on AWS (ECS Fargate, Terraform via terranix) and Northflank, from one service catalog";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

    crane.url = "github:ipetkov/crane";

    # RustSec's advisories for crane's cargoAudit check (crane's quick-start-workspace).
    advisory-db = {
      url = "github:rustsec/advisory-db";
      flake = false;
    };

    terranix = {
      url = "github:terranix/terranix";
      inputs.nixpkgs.follows = "nixpkgs";
    };

    rust-overlay = {
      url = "github:oxalica/rust-overlay";
      inputs.nixpkgs.follows = "nixpkgs";
    };

    flake-parts = {
      url = "github:hercules-ci/flake-parts";
      inputs.nixpkgs-lib.follows = "nixpkgs";
    };
  };

  outputs = inputs @ {flake-parts, ...}:
    flake-parts.lib.mkFlake {inherit inputs;} {
      systems = ["x86_64-linux" "aarch64-linux"];
      imports = [
        ./nix/pkgs.nix
        ./nix/rust.nix
        ./nix/images.nix
        ./nix/lambda.nix
        ./nix/rendered.nix
        ./nix/apps.nix
        ./nix/checks.nix
        ./nix/devshell.nix
        ./nix/formatter.nix
      ];
    };
}
