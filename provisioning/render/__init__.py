"""Pure renderers: every artifact a deployment ships, as a deterministic function of the Spec.

No I/O, no clock, no randomness unless passed in. One artifact a module:

- ``policy``: the instance role's IAM policy and trust policy;
- ``security_group``: ingress rules;
- ``registry_config``: the registry's ``config.yml``;
- ``container``: the ``docker run`` of the registry and of the TLS proxy, as data;
- ``tls`` / ``caddyfile``: self-signed TLS material, the Let's Encrypt proxy's Caddyfile;
- ``boot_script``: the script the instance runs on every boot (its values; ``boot_shell``: its fixed bash);
- ``user_data``: the cloud-config that installs all of the above;
- ``launch``: ``ec2.run_instances`` parameters;
- ``paths``: where the boot lays files out on the host and inside the containers.
"""
