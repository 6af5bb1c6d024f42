"""The AWS steps, one module each (bucket, elastic_ip, parameters, role, legacy_user, security_group,
image, instance), each ending in a class of the step shape (provisioning/step.py).

Every `apply` looks before it creates (by tag or by the deployment's deterministic names) and corrects
what differs; every `remove` removes only what carries this deployment's tags or names.
"""
