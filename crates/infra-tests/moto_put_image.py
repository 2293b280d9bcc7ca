"""Pushes a stand-in image (a small OCI manifest, no layer blobs) into an ECR
repository of a moto server, through the ECR API as `aws ecr put-image`
would. Usage: python moto_put_image.py ENDPOINT REGION REPOSITORY TAG
"""

import hashlib
import json
import sys

import boto3


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


endpoint, region, repository, tag = sys.argv[1:]
config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": digest(config),
        "size": len(config),
    },
    "layers": [],
}
ecr = boto3.client(
    "ecr",
    endpoint_url=endpoint,
    region_name=region,
    aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
    aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
)
ecr.put_image(repositoryName=repository, imageTag=tag, imageManifest=json.dumps(manifest))
images = ecr.describe_images(repositoryName=repository)["imageDetails"]
print(json.dumps({"repository": repository, "images": len(images)}))
