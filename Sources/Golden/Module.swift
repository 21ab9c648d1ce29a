/// Module `Golden`; see docs/DESIGN.md.
enum GoldenNamespace {}
