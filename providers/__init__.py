"""SCM providers behind the CiProvider protocol."""
