"""moto's server mode, plus what the staging and bootstrap applies need and moto lacks.

moto 5.2 has no tagging for Application Auto Scaling (ListTagsForResource,
TagResource, UntagResource); the AWS provider tags every scalable target
(default_tags) and retries the 500 forever. This keeps those tags in memory,
per scalable target ARN, like the real API. moto also drops a lifecycle rule's
NoncurrentVersionExpiration.NewerNoncurrentVersions, so the provider waits for
the bootstrap's state-bucket rule to read back forever; this keeps and returns
it. And moto checks object calls against the bucket policy with no request
context and treats a statement whose Condition does not match as a Deny, so the
state bucket's TLS-only Deny refuses every object call: this skips statements
whose Condition does not match, with the transport (aws:SecureTransport,
s3:TlsVersion) known from how the server was started (--ssl-cert / --ssl: TLS). Usage:
python moto_server.py -p PORT [--ssl-cert CERT --ssl-key KEY]
"""

import json
import re
import sys

from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse
from moto.s3.models import FakeBucket
from moto.s3.responses import S3Response
from moto.server import main

_tags: dict[str, dict[str, str]] = {}
_register = ApplicationAutoScalingResponse.register_scalable_target


def register_scalable_target(self):
    response = _register(self)
    arn = json.loads(response).get("ScalableTargetARN")
    if arn:
        _tags.setdefault(arn, {}).update(self._get_param("Tags") or {})
    return response


def tag_resource(self):
    _tags.setdefault(self._get_param("ResourceARN"), {}).update(self._get_param("Tags") or {})
    return "{}"


def untag_resource(self):
    tags = _tags.get(self._get_param("ResourceARN"), {})
    for key in self._get_param("TagKeys") or []:
        tags.pop(key, None)
    return "{}"


def list_tags_for_resource(self):
    return json.dumps({"Tags": _tags.get(self._get_param("ResourceARN"), {})})


_set_lifecycle = FakeBucket.set_lifecycle
_get_bucket_lifecycle = S3Response.get_bucket_lifecycle


_TLS = any(flag in sys.argv for flag in ("-s", "--ssl", "-c", "--ssl-cert"))


# IAM's operators for the conditions the project's bucket policies use (moto
# ignores operators it does not know, Bool and NumericLessThan among them).
_OPERATORS = {
    "Bool": lambda wanted, got: got.lower() == str(wanted).lower(),
    "NumericLessThan": lambda wanted, got: float(got) < float(wanted),
}


def condition_applies(condition, context):
    for operator, keys in condition.items():
        check = _OPERATORS.get(operator)
        if check is None:
            continue  # moto's own behaviour for operators it does not know
        for key, wanted in keys.items():
            got = context.get(key)
            wanted = wanted if isinstance(wanted, list) else [wanted]
            if got is None or not any(check(w, got) for w in wanted):
                return False
    return True


def get_permission(self, action, resource):
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    if self.policy is None:
        return PermissionResult.NEUTRAL
    context = {"aws:SecureTransport": "true" if _TLS else "false", "s3:TlsVersion": "1.3" if _TLS else "0"}
    statements = json.loads(self.policy)["Statement"]
    permitted = False
    for raw in statements if isinstance(statements, list) else [statements]:
        statement = IAMPolicyStatement(raw)
        # moto answers DENIED for a statement whose Condition does not match,
        # Allow or Deny alike; in IAM such a statement does not apply.
        if "Condition" in raw and not condition_applies(raw["Condition"], context):
            continue
        result = statement.is_action_permitted(action, resource, incoming_condition_values=context)
        if result == PermissionResult.DENIED:
            return result
        permitted = permitted or result == PermissionResult.PERMITTED
    return PermissionResult.PERMITTED if permitted else PermissionResult.NEUTRAL


def set_lifecycle(self, rules):
    _set_lifecycle(self, rules)
    self.newer_noncurrent_versions = {
        rule.get("ID"): rule["NoncurrentVersionExpiration"]["NewerNoncurrentVersions"]
        for rule in rules
        if (rule.get("NoncurrentVersionExpiration") or {}).get("NewerNoncurrentVersions")
    }


def get_bucket_lifecycle(self):
    response = _get_bucket_lifecycle(self)
    bucket = self.backend.get_bucket(self.bucket_name)
    for rule_id, newer in getattr(bucket, "newer_noncurrent_versions", {}).items():
        status, headers, body = response
        rule = re.compile(rf"(<ID>{re.escape(rule_id)}</ID>.*?<NoncurrentDays>\d+</NoncurrentDays>)", re.S)
        body = rule.sub(rf"\1<NewerNoncurrentVersions>{newer}</NewerNoncurrentVersions>", body, count=1)
        response = (status, headers, body)
    return response


FakeBucket.get_permission = get_permission
FakeBucket.set_lifecycle = set_lifecycle
S3Response.get_bucket_lifecycle = get_bucket_lifecycle
ApplicationAutoScalingResponse.register_scalable_target = register_scalable_target
ApplicationAutoScalingResponse.tag_resource = tag_resource
ApplicationAutoScalingResponse.untag_resource = untag_resource
ApplicationAutoScalingResponse.list_tags_for_resource = list_tags_for_resource

if __name__ == "__main__":
    main(sys.argv[1:])
