"""HTTP serving with BentoML: the engine (model + limits) and the service around it."""
