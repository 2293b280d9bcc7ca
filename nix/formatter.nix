# `nix fmt`: alejandra, the formatter `scripts/check-nix` and the nix-lint check
# enforce. Since Nix 2.25 `nix fmt` passes no path when given none (the
# formatter decides; `nix fmt` docs), and alejandra with no path formats
# standard input, so this wrapper formats the tree it is run in instead.
# nixpkgs' writeShellApplication (trivial-builders), as in nix/apps.nix.
{
  perSystem = {pkgs, ...}: {
    formatter = pkgs.writeShellApplication {
      name = "nix-fmt";
      runtimeInputs = [pkgs.alejandra];
      text = ''
        if (($# == 0)); then
          set -- .
        fi
        exec alejandra "$@"
      '';
    };
  };
}
