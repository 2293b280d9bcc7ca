//! A harness that runs the flake's glue here, where nixpkgs cannot be built:
//! nix/*.nix evaluated with real flake-parts, terranix and nixpkgs' lib and a
//! stand-in package set whose packages are this machine's programs and whose
//! builders are small derivations Nix builds here (`nix/stand-in-pkgs.nix`).
//! The checks, apps and the dev shell it yields are then built and run by
//! the tests. What only a real Nix proves is listed in README.md ("Nix").

pub mod ecs;
pub mod harness;
pub mod inputs;
pub mod machine;
pub mod registry;
