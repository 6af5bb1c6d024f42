"""The `spotreg` command line, above the product (``provisioning``) and the harness (``harness``)."""
