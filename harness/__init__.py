"""The harness: what proves a deployment works (live runs, verify, smoke checks, reports).

It depends on the product (``provisioning``); the product never imports it.
"""
