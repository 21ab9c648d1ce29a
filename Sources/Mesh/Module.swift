/// Module `Mesh`; see docs/DESIGN.md.
enum MeshNamespace {}
