"""The effectful shell: one module per AWS step, each taking its boto3 clients as arguments.

Every `ensure_*` looks before it creates (by tag or by the deployment's deterministic names) and
corrects what differs; every `remove_*` removes only what carries this deployment's tags or names.
"""

from provisioning.aws.clients import AwsClients, make_clients

__all__ = ["AwsClients", "make_clients"]
