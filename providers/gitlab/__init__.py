"""GitLab: verified webhooks, the python-gitlab provider and the pipeline test report."""
