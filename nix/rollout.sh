# shellcheck shell=bash
# Included by nix/apps.nix (deploy-aws) and run on its own by
# crates/flake-tests/tests/rollout.rs. Needs aws and jq on PATH.
#
# Followed: the Amazon ECS API Reference, DescribeServices (up to 10 services
# per call; `failures[]` with `arn` and `reason`; Deployment `status` PRIMARY
# (the most recent deployment) / ACTIVE / INACTIVE, `taskDefinition`,
# `rolloutState` IN_PROGRESS / COMPLETED / FAILED and `rolloutStateReason`)
# and the AWS CLI's `aws ecs describe-services --cluster --services`.
# `aws ecs wait services-stable` is not used: it succeeds when a service has
# one deployment and runningCount equals desiredCount, which is also the
# state after the circuit breaker rolled back to the previous task definition.

# Long enough for the circuit breaker to decide (its threshold of failed
# tasks, each after the health check grace period) on a slow Fargate start;
# the deploy jobs have 120 minutes.
ROLLOUT_TIMEOUT_SECONDS=${ROLLOUT_TIMEOUT_SECONDS:-1800}
ROLLOUT_POLL_SECONDS=${ROLLOUT_POLL_SECONDS:-15}

# rollout_expectations TF_DIR: "cluster service task-definition" per ECS
# service of the applied state (the task definition Terraform just set).
rollout_expectations() {
  terraform -chdir="$1" show -json |
    jq -r '.values.root_module | [., .child_modules[]?] | .[].resources[]?
      | select(.type == "aws_ecs_service") | .values
      | "\(.cluster) \(.name) \(.task_definition)"'
}

# confirm_rollouts EXPECTATIONS: for every "cluster service task-definition"
# line, wait until the service's PRIMARY deployment runs that task definition
# with rolloutState COMPLETED. Fails (status 1, a message naming the service,
# its rolloutState and rolloutStateReason) on a rollback, a FAILED rollout, a
# missing service, or when ROLLOUT_TIMEOUT_SECONDS pass.
confirm_rollouts() {
  local deadline=$((SECONDS + ROLLOUT_TIMEOUT_SECONDS))
  local -A want=() cluster_of=() last=()
  local cluster service task_definition
  while read -r cluster service task_definition; do
    [[ -n "$service" ]] || continue
    want[$service]=$task_definition
    cluster_of[$service]=$cluster
  done <"$1"
  local pending=("${!want[@]}")
  while ((${#pending[@]})); do
    local waiting=() i response name state reason running
    for ((i = 0; i < ${#pending[@]}; i += 10)); do
      local batch=("${pending[@]:i:10}")
      response=$(aws ecs describe-services --output json \
        --cluster "${cluster_of[${batch[0]}]}" --services "${batch[@]}") || {
        echo "error: aws ecs describe-services failed for ${batch[*]}" >&2
        return 1
      }
      if jq -e '.failures | length > 0' <<<"$response" >/dev/null; then
        echo "error: ECS does not describe $(jq -r '[.failures[] | "\(.arn) (\(.reason))"] | join(", ")' <<<"$response")" >&2
        return 1
      fi
      while IFS=$'\t' read -r name state reason running; do
        if [[ "$running" != "${want[$name]}" ]]; then
          echo "error: service $name was rolled back: its PRIMARY deployment runs $running, not ${want[$name]} (rolloutState $state: $reason)" >&2
          return 1
        fi
        case "$state" in
          COMPLETED) echo "rolled out: $name ($running)" ;;
          FAILED)
            echo "error: service $name failed to roll out: rolloutState FAILED: $reason" >&2
            return 1
            ;;
          *)
            waiting+=("$name")
            last[$name]="rolloutState $state: $reason"
            ;;
        esac
      done < <(jq -r '.services[] | (.deployments | map(select(.status == "PRIMARY")) | first) as $primary
        | [.serviceName, $primary.rolloutState // "none", $primary.rolloutStateReason // "none", $primary.taskDefinition // "none"]
        | @tsv' <<<"$response")
    done
    ((${#waiting[@]})) || return 0
    if ((SECONDS >= deadline)); then
      for name in "${waiting[@]}"; do
        echo "error: service $name did not finish its rollout in ${ROLLOUT_TIMEOUT_SECONDS}s (${last[$name]})" >&2
      done
      return 1
    fi
    pending=("${waiting[@]}")
    sleep "$ROLLOUT_POLL_SECONDS"
  done
}
