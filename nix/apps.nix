# `nix run .#<app>`: thin writeShellApplication wrappers (shellcheck runs on
# them at build time) around Terraform, skopeo, the AWS CLI and the project's
# own binaries. Every value that names a build (image tags, the Lambda zip,
# the rendered Terraform) is a derivation of this flake.
#
#   dev                          the local stack (`cargo xtask dev`)
#   push-images ENV              images to ECR (and GHCR when GHCR_REPOSITORY is set)
#   plan-aws ENV                 terraform plan -detailed-exitcode (0 none, 2 changes)
#   deploy-aws ENV               ECR repositories, images, terraform apply, then
#                                every ECS service's rollout (nix/rollout.sh)
#   migrate-aws ENV              update and invoke the migration Lambda
#   bootstrap-aws                state bucket and CI roles, once per account
#   plan-northflank              `northflank plan` with this build's images
#   deploy-northflank            images to GHCR, then `northflank deploy`
#
# Terraform takes the state lock with -lock-timeout (a concurrent run waits
# instead of failing). A lock left by a killed run is released with
# `terraform force-unlock LOCK_ID` in a directory initialised with the same
# backend (README "Nix"). When an apply fails to write the state, Terraform
# writes errored.tfstate: the apps keep it under
# ~/.local/state/iac-experiment/ and say so (`terraform state push` restores it).
{
  perSystem = {
    config,
    lib,
    pkgs,
    system,
    images,
    rendered,
    terraform,
    rustToolchainFor,
    ...
  }: let
    inherit (config.packages) image-manifest;

    # "name tag stream-script" per image, for the shell loops below.
    imageList = pkgs.writeText "images.txt" (lib.concatStrings (
      lib.mapAttrsToList (name: image: "${name} ${image.imageTag} ${image}\n") images
    ));

    # Shell functions, included by the apps that use them.
    base = ''
      die() {
        printf 'error: %s\n' "$*" >&2
        exit 1
      }

      # Temporary files and directories, removed on exit (after tf_cleanup,
      # when the app has one, kept what a person needs).
      TEMP_PATHS=()
      # shellcheck disable=SC2317 # run by the EXIT trap
      on_exit() {
        if declare -F tf_cleanup >/dev/null; then
          tf_cleanup
        fi
        rm -rf "''${TEMP_PATHS[@]}"
      }
      trap on_exit EXIT

      # require VAR "what it is": fail with a clear message when VAR is unset or empty.
      require() {
        [[ -n "''${!1:-}" ]] || die "$1 is not set: $2"
      }

      # The environment argument of the AWS and Northflank apps.
      environment() {
        (($# == 1)) || die "usage: nix run .#$(basename "$0") -- <production|staging>"
        case "$1" in
          production | staging) ;;
          *) die "unknown environment '$1' (expected production or staging)" ;;
        esac
      }
    '';

    # aws_environment ENV: `environment`, and AWS_REGION must be the region the
    # rendered infra/<env>/main.tf.json deploys to (its provider block), so
    # images, the Lambda and Terraform all go to one region.
    awsEnvironment = ''
      aws_environment() {
        environment "$@"
        local region
        region=$(jq -r '.provider.aws.region // empty' "${rendered.all}/infra/$1/main.tf.json")
        require AWS_REGION "the AWS region of the deployment (infra/$1/main.tf.json: ''${region:-unknown})"
        if [[ "$region" =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ && "$AWS_REGION" != "$region" ]]; then
          die "AWS_REGION is $AWS_REGION but infra/$1/main.tf.json deploys to $region"
        fi
      }
    '';

    registries = ''
      ecr_registry() {
        require AWS_REGION "the AWS region of the deployment, e.g. us-east-1"
        local account
        account=$(aws sts get-caller-identity --query Account --output text) ||
          die "no AWS credentials (aws sts get-caller-identity failed)"
        printf '%s.dkr.ecr.%s.amazonaws.com' "$account" "$AWS_REGION"
      }

      # require_repositories ENV: every image's ECR repository exists (deploy-aws
      # creates them; push-images alone cannot).
      require_repositories() {
        local name
        while read -r name _; do
          aws ecr describe-repositories --repository-names "$1/$name" >/dev/null 2>&1 ||
            die "ECR repository $1/$name does not exist: nix run .#deploy-aws -- $1 creates it"
        done <${imageList}
      }

      ecr_login() {
        aws ecr get-login-password --region "$AWS_REGION" |
          skopeo login --username AWS --password-stdin "$1"
      }

      ghcr_login() {
        require GHCR_TOKEN "a token that may write packages of $GHCR_REPOSITORY (e.g. GITHUB_TOKEN)"
        printf '%s' "$GHCR_TOKEN" |
          skopeo login --username "''${GHCR_USERNAME:-''${GITHUB_ACTOR:-oauth2}}" --password-stdin ghcr.io
      }

      ghcr_prefix() {
        printf 'ghcr.io/%s' "''${GHCR_REPOSITORY,,}"
      }

      # push_images ECR_REGISTRY ENV: every image to <registry>/<env>/<name>:<tag>
      # (skipped when ECR_REGISTRY is empty) and to GHCR when GHCR_REPOSITORY is
      # set. Tags are immutable, so a tag that exists already is skipped.
      push_images() {
        local registry=$1 env=$2 name tag stream archive ref
        local dir
        dir=$(mktemp -d)
        TEMP_PATHS+=("$dir")
        # skopeo needs a signature policy; pushing our own archives needs none.
        printf '{"default":[{"type":"insecureAcceptAnything"}]}' >"$dir/policy.json"
        while read -r name tag stream; do
          local refs=()
          [[ -n "$registry" ]] && refs+=("$registry/$env/$name:$tag")
          [[ -n "''${GHCR_REPOSITORY:-}" ]] && refs+=("$(ghcr_prefix)/$name:$tag")
          archive=""
          for ref in "''${refs[@]}"; do
            if skopeo inspect --raw "docker://$ref" >/dev/null 2>"$dir/inspect.err"; then
              echo "exists: $ref"
              continue
            fi
            # Only a missing manifest means "push"; anything else (auth,
            # network, a missing repository) is an error to show, not to retry
            # as a push that an immutable repository would refuse.
            grep -Eqi 'manifest unknown|manifest_unknown|not found' "$dir/inspect.err" ||
              die "cannot inspect $ref: $(cat "$dir/inspect.err")"
            if [[ -z "$archive" ]]; then
              archive="$dir/$name.tar"
              "$stream" >"$archive"
            fi
            skopeo --policy "$dir/policy.json" copy --retry-times 3 "docker-archive:$archive" "docker://$ref"
            echo "pushed: $ref"
          done
          rm -f "$dir/$name.tar"
        done <${imageList}
        rm -rf "$dir"
      }
    '';

    terraformLib = ''
      # Terraform working directory: a temporary copy of the rendered
      # infra/<env>/main.tf.json, this build's variables, the S3 backend.
      TF_DIR=""
      TF_LOCK_TIMEOUT=''${TF_LOCK_TIMEOUT:-10m}
      # On exit (base's on_exit): keep errored.tfstate (a failed state write)
      # where a person can push it back, then remove the directory (plans,
      # variables).
      # shellcheck disable=SC2317 # run by on_exit
      tf_cleanup() {
        [[ -n "$TF_DIR" && -d "$TF_DIR" ]] || return 0
        if [[ -f "$TF_DIR/errored.tfstate" ]]; then
          local kept
          kept=''${XDG_STATE_HOME:-$HOME/.local/state}/iac-experiment/errored-$(date -u +%Y%m%dT%H%M%SZ).tfstate
          mkdir -p "$(dirname "$kept")"
          cp "$TF_DIR/errored.tfstate" "$kept"
          echo "error: Terraform could not save the state; it is in $kept (restore: terraform state push $kept)" >&2
        fi
        rm -rf "$TF_DIR"
      }
      tf_prepare() {
        local env=$1
        require AWS_REGION "the AWS region of the deployment, e.g. us-east-1"
        require TF_STATE_BUCKET "the Terraform state bucket (output state_bucket of nix run .#bootstrap-aws)"
        require ALERT_EMAIL "the address that receives the alarms"
        TF_DIR=$(mktemp -d)
        install -m 0644 "${rendered.all}/infra/$env/main.tf.json" "$TF_DIR/main.tf.json"
        jq -n \
          --slurpfile tags ${image-manifest} \
          --arg zip "${config.packages.migration-lambda or ""}" \
          --arg email "$ALERT_EMAIL" \
          '{image_tags: $tags[0], migration_lambda_zip: $zip, alert_email: $email}' \
          >"$TF_DIR/deploy.auto.tfvars.json"
        terraform -chdir="$TF_DIR" init -input=false -backend-config="bucket=$TF_STATE_BUCKET"
      }
    '';

    # confirm_rollouts: each ECS service's PRIMARY deployment COMPLETED on
    # the task definition just applied (a rollback fails the deploy). A file
    # of its own so crates/flake-tests runs it against an ECS stand-in.
    rollout = builtins.readFile ./rollout.sh;

    app = name: description: runtimeInputs: libs: text: {
      type = "app";
      program = lib.getExe (pkgs.writeShellApplication {
        inherit name runtimeInputs;
        text = lib.concatStrings ([base] ++ libs ++ [text]);
      });
      meta.description = description;
    };

    aws = [terraform pkgs.awscli2 pkgs.skopeo pkgs.jq pkgs.coreutils];
  in {
    apps =
      {
        dev =
          app "dev" "The local stack: Postgres, migrations, every service behind one port" [
            config.packages.xtask
            (rustToolchainFor pkgs)
            pkgs.stdenv.cc
            pkgs.postgresql_16
            pkgs.git
          ] [] ''
            root=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
            [[ -f "$root/services.toml" && -f "$root/Cargo.toml" ]] ||
              die "run nix run .#dev inside a checkout of this repository"
            cd "$root"
            export WORKSPACE_ROOT="$root"
            exec xtask dev "$@"
          '';
      }
      // lib.optionalAttrs (system == "x86_64-linux") {
        push-images = app "push-images" "Push this build's images to ECR (and GHCR when GHCR_REPOSITORY is set)" aws [awsEnvironment registries] ''
          aws_environment "$@"
          registry=$(ecr_registry)
          require_repositories "$1"
          ecr_login "$registry"
          [[ -z "''${GHCR_REPOSITORY:-}" ]] || ghcr_login
          push_images "$registry" "$1"
        '';

        plan-aws = app "plan-aws" "terraform plan of an environment (exit 0: no changes, 2: changes)" aws [awsEnvironment terraformLib] ''
          aws_environment "$@"
          tf_prepare "$1"
          # -lock=false: a read-only role cannot write the state lock.
          status=0
          terraform -chdir="$TF_DIR" plan -input=false -lock=false -detailed-exitcode || status=$?
          case $status in
            0) echo "no changes" ;;
            2) echo "changes pending" ;;
          esac
          exit "$status"
        '';

        deploy-aws = app "deploy-aws" "Deploy an environment: ECR repositories, images, terraform apply, confirmed rollouts" aws [awsEnvironment registries terraformLib rollout] ''
          aws_environment "$@"
          tf_prepare "$1"
          mapfile -t targets < <(jq -r '.resource.aws_ecr_repository // {} | keys[] | "-target=aws_ecr_repository.\(.)"' "$TF_DIR/main.tf.json")
          ((''${#targets[@]})) || die "infra/$1/main.tf.json declares no aws_ecr_repository"
          terraform -chdir="$TF_DIR" apply -input=false -lock-timeout="$TF_LOCK_TIMEOUT" -auto-approve "''${targets[@]}"
          registry=$(ecr_registry)
          ecr_login "$registry"
          [[ -z "''${GHCR_REPOSITORY:-}" ]] || ghcr_login
          push_images "$registry" "$1"
          terraform -chdir="$TF_DIR" plan -input=false -lock-timeout="$TF_LOCK_TIMEOUT" -out=deploy.tfplan
          terraform -chdir="$TF_DIR" apply -input=false -lock-timeout="$TF_LOCK_TIMEOUT" -auto-approve deploy.tfplan
          rollout_expectations "$TF_DIR" >"$TF_DIR/rollouts.txt"
          [[ -s "$TF_DIR/rollouts.txt" ]] || die "the state of $1 has no aws_ecs_service to confirm"
          confirm_rollouts "$TF_DIR/rollouts.txt"
          echo "deployed $1; run the migrations with: nix run .#migrate-aws -- $1"
        '';

        migrate-aws = app "migrate-aws" "Update the migration Lambda to this build's zip and run it" aws [awsEnvironment terraformLib] ''
          aws_environment "$@"
          require AWS_REGION "the AWS region of the deployment, e.g. us-east-1"
          function=''${MIGRATION_FUNCTION:-}
          if [[ -z "$function" ]]; then
            tf_prepare "$1"
            function=$(terraform -chdir="$TF_DIR" output -raw migration_lambda_name) ||
              die "cannot read output migration_lambda_name; set MIGRATION_FUNCTION"
          fi
          aws lambda update-function-code --function-name "$function" \
            --zip-file "fileb://${config.packages.migration-lambda}" >/dev/null
          aws lambda wait function-updated --function-name "$function"
          result=$(mktemp)
          TEMP_PATHS+=("$result")
          response=$(aws lambda invoke --function-name "$function" --cli-read-timeout 0 \
            --cli-binary-format raw-in-base64-out --payload '{}' "$result")
          if jq -e '.FunctionError' <<<"$response" >/dev/null; then
            echo "migration failed ($(jq -r .FunctionError <<<"$response")):" >&2
            cat "$result" >&2
            echo >&2
            exit 1
          fi
          cat "$result"
          echo
        '';

        bootstrap-aws = app "bootstrap-aws" "Create the Terraform state bucket and the CI roles (once per account)" aws [] ''
          (($# == 0)) || die "usage: nix run .#bootstrap-aws (no arguments)"
          require AWS_REGION "the AWS region of the state bucket and the deployments"
          require GITHUB_REPOSITORY "owner/name of the GitHub repository whose workflows deploy"
          # The state bucket lives where the environments deploy.
          for env in production staging; do
            region=$(jq -r '.provider.aws.region // empty' "${rendered.all}/infra/$env/main.tf.json")
            [[ -z "$region" || "$region" == "$AWS_REGION" ]] ||
              die "AWS_REGION is $AWS_REGION but infra/$env/main.tf.json deploys to $region"
          done
          account=$(aws sts get-caller-identity --query Account --output text) ||
            die "no AWS credentials (aws sts get-caller-identity failed)"
          # Local state, kept outside the repository: keep this directory.
          dir=''${BOOTSTRAP_DIR:-''${XDG_STATE_HOME:-$HOME/.local/state}/iac-experiment/bootstrap-$account}
          mkdir -p "$dir"
          install -m 0644 "${rendered.all}/infra/bootstrap/main.tf.json" "$dir/main.tf.json"
          # -upgrade: the directory keeps .terraform.lock.hcl between runs, and
          # after a flake update the provider it selected is no longer there.
          terraform -chdir="$dir" init -input=false -upgrade
          terraform -chdir="$dir" apply -input=false \
            -var "github_repository=$GITHUB_REPOSITORY" \
            -var "account_id=$account" \
            -var "region=$AWS_REGION"
          terraform -chdir="$dir" output
          echo "state of the bootstrap: $dir/terraform.tfstate"
        '';
      }
      // lib.optionalAttrs (system == "x86_64-linux" && config.packages ? northflank) (let
        # Northflank holds one project for the suite (the template creates it), so
        # these apps take no environment name.
        northflankApp = command: description:
          app "${command}-northflank" description [config.packages.northflank pkgs.skopeo pkgs.jq pkgs.coreutils] [registries] (''
              (($# == 0)) || die "usage: nix run .#${command}-northflank (Northflank has one project: no environment argument)"
              require NORTHFLANK_TOKEN "a Northflank API token"
            ''
            + (
              if command == "deploy"
              then ''
                require GHCR_REPOSITORY "owner/name of the GHCR repository the images are pulled from"
                require NORTHFLANK_REGISTRY_CREDENTIALS "id of the Northflank registry credential that can pull from GHCR"
                ghcr_login
                push_images "" ""
                args=()
                while read -r name tag _; do
                  variable=''${name^^}
                  args+=(--arg "''${variable//-/_}_IMAGE=$(ghcr_prefix)/$name:$tag")
                done <${imageList}
                args+=(--arg "REGISTRY_CREDENTIALS=$NORTHFLANK_REGISTRY_CREDENTIALS")
                northflank deploy --template ${config.packages.northflank-template} "''${args[@]}"
              ''
              else ''
                northflank plan --template ${config.packages.northflank-template}
              ''
            ));
      in {
        plan-northflank = northflankApp "plan" "Diff the deployed Northflank template against the rendered one";
        deploy-northflank = northflankApp "deploy" "Push images to GHCR, then northflank deploy";
      });
  };
}
