/// Module `DeMo`; see docs/DESIGN.md.
enum DeMoNamespace {}
