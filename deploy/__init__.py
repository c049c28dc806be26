"""Deployment: the `agora` CLI, the local launcher behind `agora up`, Docker and k8s (issue 6)."""

import accel  # noqa: F401  (first: compiled cores, when built; see accel)
