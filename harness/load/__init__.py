"""Load on a registry: many clients doing docker's pull sequence, timed per step (issue 13).

``image`` pushes the image the clients pull; ``pull`` is one client's pull; ``generator`` runs N of
them in a child process; ``stats`` turns the timings into pulls/s and percentiles; ``auth_check``
proves a configuration still refuses anonymous, wrong and removed credentials; ``stand`` starts what
is measured (moto's S3, the registry with the rendered config and, for ``front-10``, the front inside
its container, see ``front``), CPU-limited; ``capacity`` runs it all side by side.
"""
