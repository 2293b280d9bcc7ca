# The bootstrap configuration: what must exist before the first deploy, applied
# once by an administrator (`nix run .#bootstrap-aws`). Its outputs are the
# values the repository's CI settings need.
{
  imports = [
    ./variables.nix
    ./state-bucket.nix
    ./github-oidc.nix
    ./read-policy.nix
    ./deploy-policy.nix
    ./environment-boundary.nix
    ./outputs.nix
  ];
}
