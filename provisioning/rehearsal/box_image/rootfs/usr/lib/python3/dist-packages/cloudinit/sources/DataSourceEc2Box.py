"""cloud-init's Ec2 datasource in the spotreg instance box: told the platform is AWS.

On EC2, cloud-init recognises AWS from DMI data (``ec2…`` system UUID); in a container DMI reads as
nothing and the platform would be "unknown", which turns off IMDSv2 session tokens. Everything else is
the Ec2 datasource unchanged.
"""

from cloudinit import sources
from cloudinit.sources import DataSourceEc2 as ec2


class DataSourceEc2Box(ec2.DataSourceEc2):
    dsname = "Ec2"

    def _get_cloud_name(self):
        return ec2.CloudNames.AWS


datasources = [(DataSourceEc2Box, (sources.DEP_FILESYSTEM, sources.DEP_NETWORK))]


def get_datasource_list(depends):
    return sources.list_from_depends(depends, datasources)
