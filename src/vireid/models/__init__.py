"""Models: backbones, variational bottlenecks, and the vd / ib / baseline networks."""
