"""Deployment: the local launcher behind `agora up`, the Dockerfile and Kubernetes manifests (issue 6)."""
