"""Launch distributed training: a Kubeflow PyTorchJob on a cluster, ``torchrun`` locally."""
