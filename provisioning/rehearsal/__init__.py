"""The instance box: an EC2 instance played on this machine (image, metadata service, network, rehearsal)."""
