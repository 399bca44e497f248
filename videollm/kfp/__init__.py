"""The Kubeflow pipeline's task logic, and compiling, running and submitting the pipelines."""
