"""Deployment: the `agora` CLI, the local launcher behind `agora up`, Docker and k8s (issue 6)."""
