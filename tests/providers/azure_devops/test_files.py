"""``.aac.yml`` read through the Git items API at a commit or a branch."""

from __future__ import annotations

from collections.abc import Callable

from providers.azure_devops.provider import AzureDevOpsProvider
from providers.base import ReadsRepositoryFiles
from tests.fakes.azure_devops import FakeAzureDevOps
from tests.providers.azure_devops.conftest import REPOSITORY, SHA


async def test_a_file_is_read_at_the_commit(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    fake_azure.add_item(REPOSITORY, ".aac.yml", b"suite: tests\n", SHA)
    provider = azure_provider()
    assert isinstance(provider, ReadsRepositoryFiles)

    assert await provider.get_file(REPOSITORY, ".aac.yml", SHA) == b"suite: tests\n"
    (read,) = [r for r in fake_azure.requests if r.operation == "GetItem"]
    assert read.query["versionDescriptor.versionType"] == "commit"


async def test_a_missing_file_is_none(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    assert await azure_provider().get_file(REPOSITORY, ".aac.yml", SHA) is None


def test_file_url_points_at_the_commit_in_the_web_ui(
    azure_provider: Callable[..., AzureDevOpsProvider], fake_azure: FakeAzureDevOps
) -> None:
    url = azure_provider().file_url(REPOSITORY, ".aac.yml", SHA)
    assert url == f"{fake_azure.url}/Fabrikam/_git/widgets?path=/.aac.yml&version=GC{SHA}"
    branch = azure_provider().file_url(REPOSITORY, ".aac.yml", "main")
    assert branch.endswith("version=GBmain")
