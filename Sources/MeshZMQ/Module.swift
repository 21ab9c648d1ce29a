/// Module `MeshZMQ`; see docs/DESIGN.md.
enum MeshZMQNamespace {}
