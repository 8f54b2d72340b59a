"""The training protocol and what runs it: suites, diagnosis, distribution."""
