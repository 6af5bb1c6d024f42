"""An EC2 Instance Metadata Service (IMDS) for one instance of moto's, served over HTTP.

The box (a container playing the instance) reaches this service where an instance reaches
169.254.169.254: cloud-init's Ec2 datasource, botocore's ``InstanceMetadataFetcher`` (the AWS CLI)
and curl read it. Every answer is read from moto on the request (``describe_instances`` and friends),
so it follows the instance: a stopped instance's public address disappears here as it does in EC2.

IMDS semantics kept: IMDSv2 session tokens (``PUT /latest/api/token``, TTL 1..21600 seconds, a PUT
with ``X-Forwarded-For`` refused) and the instance's ``MetadataOptions.HttpTokens`` deciding whether a
GET without a token is answered; any version prefix (``/latest/``, ``/2009-04-04/``, ...);
directory listings one entry a line, sub-directories with a trailing ``/``, a directory named
without its slash answering its listing; role credentials from ``sts:AssumeRole`` on the instance
profile's role; ``spot/instance-action`` only while an interruption is scheduled; ``text/plain``
everywhere and ``Server: EC2ws``.

- ``service``: ``MetadataService``, answering a request from moto's records;
- ``tokens``: IMDSv2 session tokens; ``credentials``: the role's credentials, kept until near expiry;
- ``tree``: the metadata tree of an instance record; ``answer``: the responses;
- ``server``: the HTTP server on the box's listening socket.
"""

from provisioning.rehearsal.metadata_service.service import MetadataService

__all__ = ["MetadataService"]
