# One AWS environment, from the service catalog: each module is one concern
# with its own options; nix/aws/environments/<env>.nix sets the knobs.
{
  imports = [
    ./environment.nix
    ./encryption.nix
    ./network.nix
    ./load-balancer.nix
    ./containers.nix
    ./database.nix
    ./migration.nix
    ./monitoring.nix
  ];
}
