"""moto's server mode, plus the one API the staging apply needs and moto lacks.

moto 5.2 has no tagging for Application Auto Scaling (ListTagsForResource,
TagResource, UntagResource); the AWS provider tags every scalable target
(default_tags) and retries the 500 forever. This keeps those tags in memory,
per scalable target ARN, like the real API. Usage: python moto_server.py -p PORT
"""

import json
import sys

from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse
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


ApplicationAutoScalingResponse.register_scalable_target = register_scalable_target
ApplicationAutoScalingResponse.tag_resource = tag_resource
ApplicationAutoScalingResponse.untag_resource = untag_resource
ApplicationAutoScalingResponse.list_tags_for_resource = list_tags_for_resource

if __name__ == "__main__":
    main(sys.argv[1:])
