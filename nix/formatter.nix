# `nix fmt`: alejandra, the formatter `scripts/check-nix` and the nix-lint check enforce.
{
  perSystem = {pkgs, ...}: {
    formatter = pkgs.alejandra;
  };
}
