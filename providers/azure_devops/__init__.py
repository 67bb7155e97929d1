"""Azure DevOps: authenticated service hooks, the azure-devops SDK provider and the Test Results API."""  # noqa: E501
